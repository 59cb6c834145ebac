"""Benchmarks for huenet (pytest-benchmark). Run: python -m pytest bench/ --benchmark-only"""
