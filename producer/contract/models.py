"""The job contract: what a job is, what each input's record holds, what a status says.

Every model that crosses Redis is a pydantic model, validated on both sides.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from producer.contract.callbacks import callback_url_problem
from producer.contract.keys import DEFAULT_QUEUE

PIPELINE_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
QUEUE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"  # no dot, no colon: part of a key name
# Priorities 0 (the default) to 9. A job of priority p is ordered as if it had become due
# p x PRIORITY_STEP_S earlier: ahead of lower-priority work that became due less than that
# before it, behind work that has waited longer. So no job is starved: at most the work
# that arrives within 9 steps after it can overtake it.
MAX_PRIORITY = 9
PRIORITY_STEP_S = 60
STAGES = ("fetch", "transform", "store")
RATE_LIMIT = "rate_limit"  # the bottleneck when waiting for rate limits weighs the most
SAFE_EXTENSION = re.compile(r"^[A-Za-z0-9]{1,16}$")  # a blob's file extension


class JobState(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"  # in the queue, ready to run
    DEFERRED = "deferred"  # in the queue, not to run before its time
    IN_PROGRESS = "in_progress"  # a worker is running it
    COMPLETE = "complete"  # every input has a record (some may be errors: see `failed`)
    FAILED = "failed"  # the job could not run at all, or its retries ran out; `error` says why
    CANCELLED = "cancelled"  # stopped by `cancel`; inputs not yet stored were dropped
    NOT_FOUND = "not_found"  # no such job, or its results have expired

    @property
    def is_final(self) -> bool:
        return self in (
            JobState.COMPLETE,
            JobState.FAILED,
            JobState.CANCELLED,
            JobState.NOT_FOUND,
        )


class JobSpec(BaseModel):
    """A job as enqueued: a registered pipeline, its inputs (URIs), and the pipeline's options.

    ``inputs`` is ``None`` when the inputs were written in chunks to the job's inputs list.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline: str = Field(pattern=PIPELINE_NAME_PATTERN)
    inputs: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    # W3C trace context of the enqueue (traceparent...), when tracing is on
    trace: dict[str, str] | None = None
    # Per-job overrides of the queue and the worker's settings (None: the worker's own)
    queue: str = Field(default=DEFAULT_QUEUE, pattern=QUEUE_NAME_PATTERN)
    priority: int = Field(default=0, ge=0, le=MAX_PRIORITY)
    timeout_s: float | None = Field(default=None, gt=0, le=30 * 86400)
    max_tries: int | None = Field(default=None, ge=1, le=100)
    result_ttl_s: int | None = Field(default=None, ge=1, le=365 * 86400)
    # POSTed, signed, when the job ends (None: the namespace default, if any: docs/webhooks.md)
    callback_url: str | None = None

    @field_validator("callback_url")
    @classmethod
    def _check_callback_url(cls, url: str | None) -> str | None:
        problem = None if url is None else callback_url_problem(url)
        if problem is not None:
            raise ValueError(problem)
        return url


class WebhookState(StrEnum):
    """Where the delivery of a job's ending to its webhook is."""

    PENDING = "pending"  # due, being sent, or waiting to be tried again
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # refused (4xx, SSRF guard, no secret) or out of attempts: not sent again


class WebhookStatus(BaseModel):
    """The webhook of a job: where it goes, and how its delivery went."""

    model_config = ConfigDict(frozen=True)

    url: str | None = None
    """The job's own callback URL (None: the namespace default, SLUICE_WEBHOOK_URL)."""
    state: WebhookState | None = None
    """None until the job ends (or when the job has none and the namespace no default)."""
    attempts: int = 0
    """POSTs tried for this ending."""
    error: str | None = None
    """Why the last attempt did not deliver."""
    at: float | None = None
    """When the delivery was last tried (epoch s)."""


class StageTiming(BaseModel):
    """Time spent in one stage, summed over the items that went through it, and the stage's
    capacity while the job ran: its slots (fetches in flight, pool processes, store writers)
    times the seconds the job's units ran, summed over the workers that ran them."""

    model_config = ConfigDict(frozen=True)

    count: int = 0
    total_s: float = 0.0
    slot_s: float = 0.0

    @property
    def mean_s(self) -> float:
        return self.total_s / self.count if self.count else 0.0

    @property
    def utilisation(self) -> float | None:
        """How busy the stage's slots were with this job, 0..1 (None: capacity not known)."""
        return min(1.0, self.total_s / self.slot_s) if self.slot_s else None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "total_s": self.total_s,
            "mean_s": self.mean_s,
            "utilisation": self.utilisation,
        }


class JobStatus(BaseModel):
    """A job's state, progress per stage, timestamps and stage timings.

    The stage counts say how many items have *left* each stage, including items that
    skipped a stage because an earlier one failed; so each reaches ``total`` at the end.
    """

    model_config = ConfigDict(frozen=True)

    job_id: str
    state: JobState
    pipeline: str | None = None
    total: int = 0
    fetched: int = 0
    transformed: int = 0
    stored: int = 0
    failed: int = 0
    error: str | None = None
    attempts: int = 0
    worker: str | None = None
    queue: str = DEFAULT_QUEUE
    priority: int = 0
    timeout_s: float | None = None  # per-job overrides set at enqueue (None: the worker's)
    max_tries: int | None = None
    result_ttl_s: int | None = None
    schedule: str | None = None  # the schedule whose tick enqueued it (docs/schedules.md)
    enqueued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    stages: dict[str, StageTiming] = Field(default_factory=dict)
    rate_wait_count: int = 0
    """Fetches that waited for their slot under a rate limit (docs/rate-limits.md)."""
    rate_wait_s: float = 0.0
    """Their seconds waiting, summed; counted as waiting, not in the fetch stage's time."""

    @property
    def rate_wait(self) -> StageTiming:
        """The waiting for rate limits as a stage of its own: it holds fetch slots, so its
        capacity is the fetch stage's."""
        fetch = self.stages.get("fetch")
        slot_s = fetch.slot_s if fetch else 0.0
        return StageTiming(count=self.rate_wait_count, total_s=self.rate_wait_s, slot_s=slot_s)

    def timed(self) -> dict[str, StageTiming]:
        """The stages, and the waiting for rate limits as "rate_limit" when there was any:
        what the bottleneck is chosen from."""
        if not self.rate_wait_count:
            return self.stages
        return {**self.stages, RATE_LIMIT: self.rate_wait}

    webhook: WebhookStatus | None = None  # None: no callback URL, no delivery (yet)

    @property
    def elapsed_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at
        return None if end is None else end - self.started_at

    @property
    def bottleneck(self) -> str | None:
        """The stage whose capacity was the busiest: 64 fetches in flight at half their
        capacity are less of a limit than 2 pool processes at 90% of theirs, however much
        more time the fetches add up to. (A job whose capacities are not known — written by
        an older worker — falls back to the stage with the most time.) "rate_limit" when
        fetches waiting for their rate limits' slots weigh more than any stage. None before
        any input has left a stage."""
        if not any(t.count for t in self.stages.values()):
            return None
        ran = {name: t for name, t in self.timed().items() if t.count}
        if all(t.utilisation is not None for t in ran.values()):
            return max(ran, key=lambda name: ran[name].utilisation or 0.0)
        return max(ran, key=lambda name: ran[name].total_s)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `sluice status --json`."""
        data = self.model_dump(mode="json", exclude={"stages"})
        data["stages"] = {name: t.as_dict() for name, t in self.stages.items()}
        data["elapsed_s"] = self.elapsed_s
        data["bottleneck"] = self.bottleneck
        return data


class ItemResult(BaseModel):
    """The stored record of one input: its result, or the error that stopped it."""

    model_config = ConfigDict(frozen=True)

    index: int
    input: str
    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = None
    # seconds spent on this item in each stage it reached
    timings: dict[str, float] = Field(default_factory=dict)
    # file extension of the binary output stored beside the record, if any (e.g. "png")
    blob: str | None = None

    def blob_name(self) -> str:
        """The file name of its binary output, ``{index:06d}.{ext}`` (``.bin`` for an extension
        that is not short and alphanumeric: it comes from Redis, and must never name a path)."""
        ext = self.blob if self.blob and SAFE_EXTENSION.match(self.blob) else "bin"
        return f"{self.index:06d}.{ext}"

    def as_line(self) -> dict[str, Any]:
        """The JSON shape of one line of `sluice results --json`."""
        line: dict[str, Any] = {"index": self.index, "input": self.input, "ok": self.ok}
        if self.ok:
            line["result"] = self.result
        else:
            line["error"] = self.error
        if self.blob:
            line["blob"] = self.blob
        line["timings"] = self.timings
        return line


class QueueFigures(BaseModel):
    """One named queue's share of the figures below (units held are not told apart by queue:
    they are in one lease set)."""

    model_config = ConfigDict(frozen=True)

    ready: int
    deferred: int
    oldest_ready_age_s: float
    """As below; a job of priority p counts p x PRIORITY_STEP_S more (its head start)."""
    ready_units: int = 0
    """Units not handed out yet (lapsed leases are counted in the total only)."""


class QueueStats(BaseModel):
    """A snapshot of one namespace's queues: the figures for all of them, and per queue."""

    model_config = ConfigDict(frozen=True)

    ready: int
    """Jobs with work due that no worker has taken yet (a running job whose later units wait
    for a worker counts here too)."""
    deferred: int
    """Jobs not to run before a later time (``--defer``)."""
    in_progress: int
    """Jobs with units held by workers (started and not ended)."""
    failed: int
    """Jobs in the failed set."""
    workers: int
    """Live workers (a heartbeat within the last 30 s: `producer.contract.liveness`)."""
    oldest_ready_age_s: float
    """How long the longest-waiting ready work has waited since it became due, or since its
    job last had a unit handed out (0: none waiting)."""
    ready_units: int = 0
    """Units of work no worker holds: a job not yet split counts one, a split job each unit
    not handed out; units whose lease lapsed, or handed back, count too."""
    held_units: int = 0
    """Units workers hold now (their leases are live)."""
    queues: dict[str, QueueFigures] = Field(default_factory=dict)
    """Per queue: "default", then every other queue a job was enqueued to or a worker serves."""

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()


class WorkerInfo(BaseModel):
    """A live worker, as its heartbeat describes it."""

    model_config = ConfigDict(frozen=True)

    id: str
    """The worker's name (``SLUICE_WORKER_NAME``, default ``host:pid``)."""
    host: str = ""
    pid: int | None = None
    started: float | None = None
    """When the worker started (epoch s)."""
    last_beat: float | None = None
    """When it last wrote its heartbeat (epoch s)."""
    jobs: int | None = None
    """Jobs it runs now."""
    pool_size: int | None = None
    """Processes in its transform pool."""
    version: str = ""
    """Sluice's version in the worker."""
    queues: list[str] = Field(default_factory=lambda: [DEFAULT_QUEUE])
    """The queues it takes jobs from (SLUICE_QUEUES)."""
    rates: list[str] = Field(default_factory=list)
    """The rate limits it applies (SLUICE_FETCH_RATES, SLUICE_PIPELINE_RATES), each as
    ``host api.example.com 5/s burst 10`` or ``pipeline thumbnail 20/s``."""

    @field_validator("queues", "rates", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return [q for q in value.split(",") if q] if isinstance(value, str) else value

    @classmethod
    def from_hash(cls, fields: dict[str, str]) -> WorkerInfo:
        """The worker from its heartbeat hash; a field that does not parse is left unset, so a
        heartbeat written by another version (or by hand) never stops a listing."""
        known = {name: fields[name] for name in cls.model_fields if name in fields}
        try:
            return cls.model_validate(known)
        except ValidationError as exc:
            bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
            kept = {k: v for k, v in known.items() if k not in bad}
            return cls.model_validate({"id": fields.get("id", ""), **kept})

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `sluice workers --json` and ``GET /api/workers``."""
        return self.model_dump(mode="json")
