"""Strategy API, loader and built-in library."""
