"""Sluice\x27s test suite."""
