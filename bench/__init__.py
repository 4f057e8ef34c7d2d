"""Benchmark scripts (a package only so that bench/impact.py does not shadow the impact package for mypy)."""
