"""Sluice's worker daemon, and the API for writing pipelines and fetchers.

Pipeline authors need only this::

    from worker import Output, pipeline, fetcher
"""

from worker.errors import FetchError, ItemError, JobFailed, TransformError
from worker.registry import Fetcher, Output, fetcher, pipeline

__all__ = [
    "FetchError",
    "Fetcher",
    "ItemError",
    "JobFailed",
    "Output",
    "TransformError",
    "fetcher",
    "pipeline",
]
