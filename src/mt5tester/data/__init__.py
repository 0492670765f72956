"""Market data: importers, catalog, resampling (``resample``), validation and health checks."""
