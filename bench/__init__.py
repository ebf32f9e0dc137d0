"""Benchmarks (`make bench`): measurements against a baseline taken in the same run, not pass/fail tests."""
