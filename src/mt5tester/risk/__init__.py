"""Risk coordinator: an ordered pipeline of small rules."""
