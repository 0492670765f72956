"""Pure values shared by every layer."""
