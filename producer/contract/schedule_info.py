"""A schedule as `sluice schedules`, `Client.schedules` and the dashboard show it: the
definition a worker published, its next and last run, and its last job's state."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from producer.contract.liveness import LIVE_S
from producer.contract.models import JobState
from producer.contract.schedule_scripts import ScheduleField
from producer.contract.wire import loads, read_number


class ScheduleInfo(BaseModel):
    """One published schedule."""

    model_config = ConfigDict(frozen=True)

    name: str
    pipeline: str | None = None
    cron: str | None = None
    every_s: int | None = None
    timezone: str = "UTC"
    missed: str = "skip"
    queue: str | None = None
    priority: int | None = None
    next_run: float | None = None
    """When its next tick falls (epoch s)."""
    last_run: float | None = None
    """Its last tick fired (epoch s)."""
    last_job: str | None = None
    """The job that tick enqueued."""
    last_state: JobState | None = None
    """That job's state now (not_found once its results expired)."""
    fired: int = 0
    skipped: int = 0
    """Ticks not enqueued (``last_error`` says why the last was not)."""
    last_error: str | None = None
    published_by: str | None = None
    """The worker whose definition this is (the last started wins; once no live worker has
    held it for LIVE_S, a live worker with another definition publishes its own)."""
    stale: bool = False
    """No live worker has defined it for LIVE_S: it fires no more (removed from settings, or
    every worker that defines it is down); forgotten after FORGOTTEN_S."""
    definition: dict[str, Any] = Field(default_factory=dict)

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented use
    @property
    def timing(self) -> str:
        """``cron '0 3 * * *' Europe/Paris`` or ``every 60 s``."""
        if self.cron is not None:
            return f"cron '{self.cron}' {self.timezone}"
        return f"every {self.every_s} s" if self.every_s is not None else "-"

    @classmethod
    def from_hash(
        cls, name: str, next_ms: float | None, fields: dict[str, str], now_ms: int
    ) -> ScheduleInfo:
        """Read from the schedule's hash and its next tick; anything unreadable (written by
        hand or another version) is left unset, never an error."""
        try:
            definition = loads(fields.get(ScheduleField.DEFINITION) or "{}")
        except ValueError:
            definition = {}
        if not isinstance(definition, dict):
            definition = {}
        shown = {k: definition.get(k) for k in ("pipeline", "cron", "every_s", "queue")}
        shown |= {
            k: definition.get(k) for k in ("timezone", "missed", "priority") if k in definition
        }
        seen = read_number(fields.get(ScheduleField.SEEN_AT))
        last = read_number(fields.get(ScheduleField.LAST_TICK))
        try:
            info = cls.model_validate(shown | {"name": name})
        except ValueError:
            info = cls(name=name)
        return info.model_copy(
            update={
                "next_run": None if next_ms is None else next_ms / 1000,
                "last_run": last / 1000 if last else None,
                "last_job": fields.get(ScheduleField.LAST_JOB) or None,
                "fired": read_number(fields.get(ScheduleField.FIRED)),
                "skipped": read_number(fields.get(ScheduleField.SKIPPED)),
                "last_error": fields.get(ScheduleField.LAST_ERROR) or None,
                "published_by": fields.get(ScheduleField.PUBLISHED_BY) or None,
                "stale": seen < now_ms - LIVE_S * 1000,
                "definition": definition,
            }
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `sluice schedules --json` and ``GET /api/schedules``."""
        return self.model_dump(mode="json")
