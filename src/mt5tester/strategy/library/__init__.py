"""Built-in strategies by category."""
