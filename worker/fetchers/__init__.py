"""The built-in fetchers (http/https, file, data); importing this package registers them."""

from worker.fetchers import data, file, http

__all__ = ["data", "file", "http"]
