"""Every error Sluice raises, under one base class.

SluiceError
├── ConfigError          a setting has a bad value; the message names it
├── ServerUnavailable    no Redis server could be reached (by enqueue: within its timeout)
├── InvalidJob           a job was refused at enqueue; the message says what is wrong
├── JobExists            a job with that id is already queued, running or kept
├── JobNotFound          no job with that id
├── QueueFull            the queue stayed at its cap for the whole enqueue timeout
└── WaitTimeout          a job did not finish within the time given to `wait`

`problems` is how a pydantic ValidationError reads in all of them: a settings error names the
variable, a job's or a pipeline's options the field, each with pydantic's own words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from pydantic import ValidationError


class SluiceError(Exception):
    """Base class of every error Sluice raises."""


class ConfigError(SluiceError):
    """A setting has a bad value; the message names the setting and what would be valid."""


class ServerUnavailable(SluiceError):
    """No Redis server could be reached, or none would act as the primary (a failover);
    `enqueue` raises it once SLUICE_ENQUEUE_TIMEOUT_S has passed trying."""


class InvalidJob(SluiceError):
    """A job was refused at enqueue; the message says what is wrong with it.

    From `enqueue_many`, ``job`` is the index of the job refused and ``reason`` the message
    without its "job N: " prefix.
    """

    def __init__(self, message: str, *, job: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.job, self.reason = job, reason if reason is not None else message


class JobExists(SluiceError):
    """A job with this id already exists (queued, running, or its results are still kept)."""


class JobNotFound(SluiceError):
    """No job with this id exists (it never did, or its results have expired)."""


class QueueFull(SluiceError):
    """The queue stayed at its cap (`SLUICE_MAX_QUEUED_JOBS`) for the whole enqueue timeout.

    From `enqueue_many`, ``enqueued`` holds the ids of the jobs admitted before that.
    """

    def __init__(self, message: str, *, enqueued: list[str] | None = None) -> None:
        super().__init__(message)
        self.enqueued: list[str] = enqueued or []


class WaitTimeout(SluiceError):
    """A job did not reach a final state within the time given to `wait`."""


class Problem(NamedTuple):
    """One thing a ValidationError found wrong."""

    where: str  # the field's path, joined (``whole`` for the value as a whole)
    what: str  # pydantic's message, without the "Value error, " it puts before a ValueError's
    got: object  # the value it was given


def problems(exc: ValidationError, whole: str, *, join: str = ".") -> list[Problem]:
    """Each error of ``exc`` as a `Problem`; ``join`` joins a nested field's path."""
    return [
        Problem(
            join.join(str(part) for part in error["loc"]) or whole,
            error["msg"].removeprefix("Value error, "),
            error.get("input"),
        )
        for error in exc.errors()
    ]


def described(exc: ValidationError, whole: str) -> str:
    """Every problem of ``exc`` as ``where: what``, joined by "; "."""
    return "; ".join(f"{p.where}: {p.what}" for p in problems(exc, whole))
