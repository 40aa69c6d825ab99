"""Catalog clients: the DIRAC File Catalog client."""
