"""Data Management: the File Catalog (and, later, Storage Elements and the DataManager)."""
