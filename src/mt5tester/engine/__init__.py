"""Composition root, preflight and the one loop."""
