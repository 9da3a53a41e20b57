"""Sluice's producer side: the job contract, the async and sync clients, and the `sluice` CLI.

Light on purpose: it needs redis-py and pydantic, never the worker's dependencies.
"""

from producer.client.client import Client
from producer.client.listing import JobList
from producer.client.sync_client import SyncClient
from producer.contract.errors import (
    ConfigError,
    InvalidJob,
    JobExists,
    JobNotFound,
    QueueFull,
    ServerUnavailable,
    SluiceError,
    WaitTimeout,
)
from producer.contract.models import (
    ItemResult,
    JobSpec,
    JobState,
    JobStatus,
    QueueStats,
    StageTiming,
    WorkerInfo,
)
from producer.contract.settings import ClientSettings

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
