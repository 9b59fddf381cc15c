"""``nominal demo``: one command that brings up the whole hub on synthetic data."""
