"""Security helpers the other parts of the hub share (safe CSV exports)."""
