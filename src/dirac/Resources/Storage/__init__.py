"""Storage Elements: the StorageElement facade and its plug-ins (File, DIP); see docs/data-management.md."""
