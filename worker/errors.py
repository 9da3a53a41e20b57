"""Errors of the worker side; all derive from `producer.errors.SluiceError`.

SluiceError
├── ItemError            one input failed; its record carries the message
│   ├── FetchError       the input could not be fetched (bad URI, 404, timeout, too large)
│   └── TransformError   the transform raised, crashed, or returned something unstorable
└── JobFailed            a job cannot run at all (unknown pipeline, malformed payload)
"""

from __future__ import annotations

from producer.errors import SluiceError


class ItemError(SluiceError):
    """One input failed; the job goes on with its other inputs."""


class FetchError(ItemError):
    """An input could not be fetched; the message says why (status, timeout, size...)."""


class TransformError(ItemError):
    """A transform raised, crashed its process, or returned something that cannot be stored."""


class JobFailed(SluiceError):
    """A job cannot run at all; it is marked failed with this message and not retried."""
