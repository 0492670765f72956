"""Reports, built from the results database only."""
