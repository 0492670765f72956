"""Revision files (a package only so that setuptools ships them with mt5tester)."""
