"""Engines and storage: the Parquet lake with atomic snapshots, DuckDB and Spark sessions."""
