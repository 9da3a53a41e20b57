"""Sluice's producer side: the job contract, the async and sync clients, and the `sluice` CLI.

Light on purpose: it needs redis-py and pydantic, never the worker's dependencies.
"""

from producer.client import Client
from producer.errors import (
    ConfigError,
    InvalidJob,
    JobExists,
    JobNotFound,
    QueueFull,
    ServerUnavailable,
    SluiceError,
    WaitTimeout,
)
from producer.listing import JobList
from producer.models import (
    ItemResult,
    JobSpec,
    JobState,
    JobStatus,
    QueueStats,
    StageTiming,
    WorkerInfo,
)
from producer.settings import ClientSettings
from producer.sync_client import SyncClient

__all__ = [
    "Client",
    "ClientSettings",
    "ConfigError",
    "InvalidJob",
    "ItemResult",
    "JobExists",
    "JobList",
    "JobNotFound",
    "JobSpec",
    "JobState",
    "JobStatus",
    "QueueFull",
    "QueueStats",
    "ServerUnavailable",
    "SluiceError",
    "StageTiming",
    "SyncClient",
    "WaitTimeout",
    "WorkerInfo",
]
