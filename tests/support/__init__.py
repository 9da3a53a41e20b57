"""Helpers the tests share: real servers and real worker processes."""
