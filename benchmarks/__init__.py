"""Benchmarks of okta_pyramid against its peers; run with ``python -m benchmarks``."""
