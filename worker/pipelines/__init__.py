"""The built-in pipelines (text-stats, thumbnail); importing this package registers them."""

from worker.pipelines import text_stats, thumbnail

__all__ = ["text_stats", "thumbnail"]
