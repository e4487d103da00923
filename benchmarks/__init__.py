"""Benchmarks and evaluation commands (see README)."""
