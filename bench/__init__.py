"""Benchmarks: scripts that print figures (never timed tests). Run with ``python -m bench.<name>``."""
