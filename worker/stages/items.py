"""What flows through the stages: one `Item` per input, each belonging to a `JobRun`."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field, fields
from typing import Any

from worker.registry import Pipeline


@dataclass(slots=True)
class StageCounters:
    """Progress not yet written to the job's status hash (flushed every few hundred ms)."""

    fetched: int = 0
    transformed: int = 0
    fetch_count: int = 0
    fetch_s: float = 0.0
    transform_count: int = 0
    transform_s: float = 0.0
    store_count: int = 0
    store_s: float = 0.0
    # fetches that waited for a rate limit's slot, and their seconds waiting (not in fetch_s)
    rate_wait_count: int = 0
    rate_wait_s: float = 0.0
    # each stage's capacity while the run went: its slots × seconds (see `JobRun.account`)
    fetch_slot_s: float = 0.0
    transform_slot_s: float = 0.0
    store_slot_s: float = 0.0

    def take(self) -> StageCounters:
        """Return the pending deltas and reset them."""
        taken = StageCounters(*(getattr(self, name) for name in _COUNTERS))
        for name in _COUNTERS:
            setattr(self, name, 0.0 if name.endswith("_s") else 0)
        return taken

    def add(self, other: StageCounters) -> None:
        for name in _COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def nonzero(self) -> dict[str, int | float]:
        """The counts that are not zero, by field name."""
        return {name: value for name in _COUNTERS if (value := getattr(self, name))}

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in _COUNTERS)


_COUNTERS = tuple(f.name for f in fields(StageCounters))  # on the hot path: looked up once


@dataclass(eq=False)
class JobRun:
    """One attempt at one unit of one job inside this worker: counts its items in and out.

    ``lease_field`` and ``token`` fence every write for it (the unit's lease field and this
    hand-out's token); past ``valid_until`` (monotonic) its lease may have lapsed: it stops.
    """

    job_id: str
    pipeline: Pipeline
    options: dict[str, Any]
    lease_field: str = ""
    token: str = ""
    submitted: int = 0
    finished: int = 0
    cancelled: bool = False
    lost: bool = False  # its lease is no longer surely this worker's
    error: str | None = None  # set when the job's records cannot be stored at all
    # set by the first input whose transform or fetcher raised JobFailed: the job is to fail
    # with this message (its inputs' records are still written until the job is stopped)
    fatal: str | None = None
    counters: StageCounters = field(default_factory=StageCounters)
    counters_written: bool = False  # some progress of this run is in the status hash
    ticks: int = 0  # progress ticks seen; the first write waits for the second
    valid_until: float = math.inf
    # the records of its last batch, for its ending to write (the store stage's arguments)
    last_records: list[bytes | str] = field(default_factory=list)
    # the stages' slots (fetches in flight, pool processes, store writers), set by the
    # engine; the capacity they gave this run is counted up to ``accounted_at`` (monotonic)
    slots: tuple[int, int, int] = (0, 0, 0)
    accounted_at: float = 0.0
    _all_in: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def account(self) -> None:
        """Add the stages' capacity since the last call to the counters: the utilisation
        that names a job's bottleneck is the time its inputs spent in a stage over this."""
        now = time.monotonic()
        elapsed, self.accounted_at = now - self.accounted_at, now
        fetch, transform, store = self.slots
        self.counters.fetch_slot_s += fetch * elapsed
        self.counters.transform_slot_s += transform * elapsed
        self.counters.store_slot_s += store * elapsed

    def item_submitted(self) -> None:
        self.submitted += 1

    def all_submitted(self) -> None:
        self._all_in = True
        self._check_done()

    def ends_with(self, count: int) -> bool:
        """Whether ``count`` more finished inputs are all it has left (all are submitted)."""
        return self._all_in and self.finished + count >= self.submitted

    def items_finished(self, count: int) -> None:
        self.finished += count
        self._check_done()

    def cancel(self) -> None:
        self.cancelled = True

    def lose(self) -> None:
        """Its lease is gone: drop everything of it still in the stages."""
        self.lost = self.cancelled = True

    def stopped(self) -> bool:
        """Whether its inputs are to be dropped: cancelled, or its lease not surely held."""
        if not self.cancelled and time.monotonic() > self.valid_until:
            self.lose()
        return self.cancelled

    def _check_done(self) -> None:
        if self._all_in and self.finished >= self.submitted:
            self.done.set()


@dataclass(slots=True, eq=False)
class Item:
    """One input on its way through the stages."""

    run: JobRun
    index: int
    uri: str
    data: bytes | None = None
    held_bytes: int = 0  # bytes counted against the in-flight budget
    ok: bool = True
    error: str | None = None
    result_json: bytes | None = None
    blob: bytes | None = None
    blob_ext: str | None = None
    fetch_s: float = 0.0
    rate_wait_s: float = 0.0  # of its fetch, waiting for rate limits (not in fetch_s)
    transform_s: float = 0.0

    def fail(self, message: str) -> None:
        self.ok = False
        self.error = message
        self.data = None

    def log_fields(self) -> dict[str, str | int]:
        """What names this input in a log line (never its URI, which may hold a secret)."""
        return {"job_id": self.run.job_id, "pipeline": self.run.pipeline.name, "index": self.index}

    def fail_job(self, message: str) -> bool:
        """Fail this input and mark its job to fail with it (its transform or fetcher raised
        JobFailed); True for the first input of the job to do so."""
        first = self.run.fatal is None
        if first:
            self.run.fatal = message
        self.fail(message)
        return first
