"""The job event stream: what each entry of ``{ns}:events`` says, so readers need not poll.

The Lua scripts that change a job's state add the entry in the same atomic step
(`producer.contract.scripts.EMIT`); this module names the types and fields and reads an
entry back. An entry is one job's event (its id in ``job``) or, for jobs that moved alike in
one step (enqueued together, started by one claim, completed by one batch of endings), the
same event of several (their ids in ``jobs``, space-separated): `Event.from_entry` gives one
`Event` per job either way. The stream is bounded (``XADD ... MAXLEN ~ N``, SLUICE_EVENTS_MAXLEN): a
reader that falls more than about N entries behind misses the oldest, so a reader that
must not miss an ending (`Client.wait`) reads the status hash again when it wakes.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

DEFAULT_EVENTS_MAXLEN = 10_000  # entries kept, about (MAXLEN ~): a few seconds of a busy fleet


class EventType(StrEnum):
    """What happened to the job."""

    ENQUEUED = "enqueued"  # a Client admitted it to its queue
    STARTED = "started"  # a worker began a run of it (its first unit handed out)
    PROGRESS = "progress"  # its counts moved (a few times a second at most, per worker)
    COMPLETED = "completed"  # every input has a record (some may be errors)
    FAILED = "failed"  # it failed as a whole: ``error`` says why
    CANCELLED = "cancelled"  # stopped by `cancel`
    RETRIED = "retried"  # put back in its queue by `retry` (or `retry --failed-inputs`)
    RETRYING = "retrying"  # a try failed and runs again after ``delay_ms``, or records were
    # missing at its end and it runs again for them: ``error`` says why

    @property
    def is_final(self) -> bool:
        return self in (EventType.COMPLETED, EventType.FAILED, EventType.CANCELLED)


# An entry of several jobs' events: their ids, space-separated, instead of ``job``.
JOBS_FIELD = "jobs"
# The fields of an entry, as the scripts spell them: every entry has job (or jobs), type and
# queue.
EVENT_FIELDS = (
    JOBS_FIELD,
    "job",
    "type",
    "queue",
    "pipeline",
    "fetched",
    "transformed",
    "stored",
    "failed",
    "total",
    "error",
    "unit",
    "delay_ms",
    "schedule",
)


class Event(BaseModel):
    """One entry of the event stream."""

    model_config = ConfigDict(frozen=True)

    id: str  # the stream entry's id, "{ms}-{seq}": pass it as ``since`` to read on from it
    job: str
    type: EventType
    queue: str = "default"
    pipeline: str | None = None
    fetched: int | None = None  # progress: the job's counts when it was written
    transformed: int | None = None
    stored: int | None = None
    failed: int | None = None
    total: int | None = None
    error: str | None = None  # failed, retrying: why
    unit: int | None = None  # retrying: the unit that runs again
    delay_ms: int | None = None  # retrying: after how long
    schedule: str | None = None  # enqueued by a schedule's tick: its name

    @property
    def at_ms(self) -> int:
        """When it was written (ms epoch, the server's clock): the first part of its id."""
        return int(self.id.partition("-")[0])

    @classmethod
    def from_entry(cls, entry_id: bytes | str, fields: dict[bytes, bytes]) -> list[Event]:
        """The events of one stream entry, one per job it names; none for an entry that is
        not one (anyone may write to the stream)."""
        values = {_text(k): _text(v) for k, v in fields.items()}
        jobs = values.pop(JOBS_FIELD, "").split() or [values.pop("job", "")]
        values = {k: v for k, v in values.items() if k in EVENT_FIELDS and v != ""}
        try:
            return [cls.model_validate({"id": _text(entry_id), **values, "job": j}) for j in jobs]
        except ValueError:
            return []


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
