"""Helpers of the user commands: job IDs, tables, progress, command-line jobs and the shared command bodies."""
