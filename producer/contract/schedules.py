"""A schedule: a job enqueued again and again, at the ticks of a cron expression or every N
seconds; the definition workers read from their settings and publish to Redis.

A schedule *is* the job it enqueues (a `JobSpec`: pipeline, inputs, options, queue, priority
and the per-job settings) plus when: exactly one of ``cron`` (five fields, read in
``timezone``) or ``every_s``, and what to do with ticks missed while no worker ran
(``missed``). When the ticks fall is `producer.contract.ticks`; how each is fired once
across the workers is docs/schedules.md.
"""

from __future__ import annotations

import difflib
import hashlib
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import Field, field_validator, model_validator

from producer.contract.models import QUEUE_NAME_PATTERN, JobSpec
from producer.contract.wire import dumps

# A schedule's name is part of its key and of its jobs' ids: the queue names' grammar.
SCHEDULE_NAME_PATTERN = QUEUE_NAME_PATTERN
# The most missed ticks one schedule fires at once with missed="all" (the latest ones): a
# worker back after a day away must not flood its queue with 86,400 jobs of a 1 s schedule.
MAX_CATCH_UP = 100
# Longest interval: a year (a longer one is surely seconds given as milliseconds).
MAX_EVERY_S = 366 * 86400
MAX_JOB_ID_CHARS = 128  # producer.contract.validation's grammar

Missed = Literal["skip", "all"]


class Schedule(JobSpec):
    """A job to enqueue at each tick: a cron expression or an interval, in a time zone."""

    name: str = Field(pattern=SCHEDULE_NAME_PATTERN)
    """1-64 lowercase letters, digits, '_' and '-'; part of each job's id."""
    inputs: list[str] = Field(min_length=1)  # required here, and inline
    cron: str | None = None
    """Five fields (minute hour day-of-month month day-of-week), read in ``timezone``."""
    every_s: int | None = Field(default=None, ge=1, le=MAX_EVERY_S)
    """Seconds between ticks, counted from the Unix epoch (so every worker agrees on them)."""
    timezone: str = "UTC"
    """An IANA zone (``Europe/Paris``) the cron expression is read in."""
    missed: Missed = "skip"
    """Ticks missed while no worker ran (more than LATE_S late; a late tick is always fired):
    "skip" fires only the latest of them, once, and only if no tick is late; "all" fires
    each (the latest MAX_CATCH_UP at most). See `producer.contract.ticks.due_ticks_ms`."""

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: object) -> object:
        if isinstance(data, dict):
            for key in data:
                if isinstance(key, str) and key not in cls.model_fields:
                    close = difflib.get_close_matches(key, list(cls.model_fields), n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise ValueError(f"unknown field {key!r}{hint}")
        return data

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, cron: str | None) -> str | None:
        if cron is None:
            return None
        if len(cron.split()) != 5:
            raise ValueError(
                f"{cron!r} is not a cron expression of five fields "
                "(minute hour day-of-month month day-of-week, e.g. '*/15 * * * *')"
            )
        try:
            CronSim(cron, datetime.now(UTC))
        except CronSimError as exc:
            raise ValueError(f"{cron!r} is not a valid cron expression: {exc}") from None
        return " ".join(cron.split())

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{name!r} is not a time zone this machine knows (an IANA name such as "
                "'Europe/Paris' or 'UTC'; install tzdata where there is no system database)"
            ) from None
        return name

    @field_validator("trace")
    @classmethod
    def _no_trace(cls, trace: dict[str, str] | None) -> None:
        if trace is not None:
            raise ValueError("a schedule carries no trace context (each job starts its own)")

    @model_validator(mode="after")
    def _one_timing(self) -> Schedule:
        if (self.cron is None) == (self.every_s is None):
            raise ValueError("give exactly one of cron (an expression) or every_s (seconds)")
        if self.every_s is not None and self.timezone != "UTC":
            raise ValueError(
                "timezone is for cron schedules: every_s counts seconds of real time, the "
                "same in every zone (use cron for wall-clock times)"
            )
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def timing(self) -> str:
        """How it is shown: ``cron '0 3 * * *' Europe/Paris`` or ``every 60 s``."""
        if self.cron is not None:
            return f"cron '{self.cron}' {self.timezone}"
        return f"every {self.every_s} s"

    def job_spec(self) -> JobSpec:
        """The job each tick enqueues."""
        return JobSpec.model_validate(self.model_dump(include=set(JobSpec.model_fields)))

    def definition(self) -> bytes:
        """The definition as published to Redis (JSON, defaults included)."""
        return dumps(self.model_dump(mode="json", exclude={"trace"}))

    def digest(self) -> str:
        """A short hash of the definition: workers compare theirs with the one published."""
        return hashlib.sha256(self.definition()).hexdigest()[:16]


def tick_job_id(namespace: str, name: str, tick_ms: int) -> str:
    """The id of the job a schedule enqueues for a tick: one tick, one id, whoever fires it.

    ``sched-{name}-{tick s}.{namespace}``: arq's keys hold job ids of every namespace, so
    the namespace is in it (its hash, where the whole would pass the 128 characters of an id).
    """
    job_id = f"sched-{name}-{tick_ms // 1000}.{namespace}"
    if len(job_id) > MAX_JOB_ID_CHARS:
        job_id = (
            f"sched-{name}-{tick_ms // 1000}.{hashlib.sha256(namespace.encode()).hexdigest()[:12]}"
        )
    return job_id
