"""Every Prometheus metric a worker exports, defined in one place.

Recorded in the worker's own process (the pool processes record nothing, so no
multiprocess mode is needed) into a registry of its own, served at /metrics by
`worker.process.health_server`. Names follow Prometheus conventions: base units (seconds, bytes),
``_total`` for counters, and labels with a bounded set of values (pipeline names are the
registered ones, never a job id).

Queue figures come from Redis, so every worker reports the same ones: aggregate them
across workers with ``max``, not ``sum``.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from producer.contract.models import QueueStats

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: noise
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)  # process_cpu_seconds_total, process_resident_memory_bytes…
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

UNKNOWN_PIPELINE = "unknown"  # the label of a job naming no registered pipeline

_JOB_S = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
_WAIT_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_STAGE_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

WORKER = Info("sluice_worker", "This worker: its name, version and namespace.", registry=REGISTRY)

# --- units and jobs ----------------------------------------------------------------------
UNITS_STARTED = Counter(
    "sluice_units_started_total",
    "Attempts at units of jobs this worker started (a job of one unit is one unit).",
    ["pipeline"],
    registry=REGISTRY,
)
UNITS_FINISHED = Counter(
    "sluice_units_finished_total",
    "Unit attempts that ended, by outcome: done (every input has its record), failed (the "
    "job failed), retried (an unexpected error; the unit runs again after a backoff), "
    "handed_back (stopped at shutdown), cancelled (its job was cancelled), lease_lost (another "
    "worker holds it now).",
    ["pipeline", "outcome"],
    registry=REGISTRY,
)
UNIT_DURATION = Histogram(
    "sluice_unit_duration_seconds",
    "Time one unit attempt ran in this worker, by outcome.",
    ["pipeline", "outcome"],
    buckets=_JOB_S,
    registry=REGISTRY,
)
JOBS_FINISHED = Counter(
    "sluice_jobs_finished_total",
    "Jobs whose end this worker wrote, by outcome: complete, failed, resumed (its last unit "
    "found records missing, lost from Redis: it runs again for them).",
    ["pipeline", "outcome"],
    registry=REGISTRY,
)
JOB_QUEUE_WAIT = Histogram(
    "sluice_job_queue_wait_seconds",
    "Time work waited from when it was due (a job, or its next unit) until a worker took it.",
    ["pipeline"],
    buckets=_WAIT_S,
    registry=REGISTRY,
)
UNITS_HELD = Gauge(
    "sluice_worker_units_held", "Units of jobs this worker holds now.", registry=REGISTRY
)

# --- items and stages -------------------------------------------------------------------
ITEMS = Counter(
    "sluice_items_total",
    "Inputs that left a stage, by outcome (ok, or error: the input failed in that stage).",
    ["pipeline", "stage", "outcome"],
    registry=REGISTRY,
)
STAGE_DURATION = Histogram(
    "sluice_stage_duration_seconds",
    "Time one unit of work took in a stage: fetch and transform, one input (a fetch counts "
    "its retries; a transform is timed inside its pool process); store, one batched write.",
    ["stage"],
    buckets=_STAGE_S,
    registry=REGISTRY,
)
FETCH_ERRORS = Counter(
    "sluice_fetch_errors_total",
    "Inputs that could not be fetched, by kind of error.",
    ["kind"],
    registry=REGISTRY,
)
RATE_LIMIT_WAIT = Histogram(
    "sluice_rate_limit_wait_seconds",
    "Time a fetch (or a retry or redirect of it) waited for its slot under a rate limit, by "
    "kind (host, pipeline) and limit (the rule: a host, *.domain, * or a pipeline name); "
    "only fetches under a limit are observed.",
    ["kind", "limit"],
    buckets=_WAIT_S,
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "sluice_rate_limited_total",
    "Requests that had to wait for their slot under a rate limit, by kind and limit.",
    ["kind", "limit"],
    registry=REGISTRY,
)
STAGE_QUEUE_ITEMS = Gauge(
    "sluice_stage_queue_items",
    "Inputs waiting in the bounded queue in front of a stage.",
    ["queue"],
    registry=REGISTRY,
)
STAGE_QUEUE_CAPACITY = Gauge(
    "sluice_stage_queue_capacity_items",
    "Bound of the queue in front of a stage.",
    ["queue"],
    registry=REGISTRY,
)
INFLIGHT_BYTES = Gauge(
    "sluice_inflight_bytes", "Fetched bytes held in memory across the stages.", registry=REGISTRY
)
INFLIGHT_LIMIT_BYTES = Gauge(
    "sluice_inflight_limit_bytes",
    "Most fetched bytes held in memory (SLUICE_MAX_INFLIGHT_BYTES).",
    registry=REGISTRY,
)

# --- the process pool -------------------------------------------------------------------
POOL_PROCESSES = Gauge(
    "sluice_pool_processes", "Processes in the transform pool.", registry=REGISTRY
)
POOL_BUSY = Gauge(
    "sluice_pool_busy_processes",
    "Pool processes running a transform now (calls in flight, at most the pool size).",
    registry=REGISTRY,
)
POOL_RESTARTS = Counter(
    "sluice_pool_process_restarts_total",
    "Pool processes replaced, by reason: crash (died during a transform), timeout (killed "
    "past SLUICE_TRANSFORM_TIMEOUT_S), recycle (SLUICE_POOL_MAX_TASKS reached).",
    ["reason"],
    registry=REGISTRY,
)
for _reason in ("crash", "timeout", "recycle"):
    POOL_RESTARTS.labels(_reason)  # present at 0 from the start, so rate() sees the first one

# --- webhooks ---------------------------------------------------------------------------
WEBHOOK_DELIVERIES = Counter(
    "sluice_webhook_deliveries_total",
    "Webhook POSTs this worker made, by outcome: delivered (2xx), retried (5xx, 408, 429, a "
    "timeout or lost connection: sent again after a backoff), failed (refused at once, or "
    "out of attempts: not sent again).",
    ["outcome"],
    registry=REGISTRY,
)
for _outcome in ("delivered", "retried", "failed"):
    WEBHOOK_DELIVERIES.labels(_outcome)

# --- schedules --------------------------------------------------------------------------
SCHEDULE_TICKS = Counter(
    "sluice_schedule_ticks_total",
    "Schedule ticks this worker enqueued or skipped, by schedule (a name from its settings) "
    "and outcome: fired (its job enqueued), or skipped, by why: exists (the tick's job id "
    "was taken), queue_full (SLUICE_MAX_QUEUED_JOBS), too_many_queues (a new queue past the "
    "cap of queue names). A tick is counted once, by the worker that fired or skipped it.",
    ["schedule", "outcome"],
    registry=REGISTRY,
)


class QueueCollector(Collector):
    """The queue figures of the last successful read from Redis; none if it failed."""

    def __init__(self) -> None:
        self.stats: QueueStats | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self.stats
        if stats is None:
            return
        jobs = GaugeMetricFamily(
            "sluice_queue_jobs",
            "Jobs in the namespace by state: ready (due, not taken), deferred, in_progress "
            "(a worker runs it), failed (in the failed set). Read from Redis.",
            labels=["state"],
        )
        for state in ("ready", "deferred", "in_progress", "failed"):
            jobs.add_metric([state], getattr(stats, state))
        yield jobs
        units = GaugeMetricFamily(
            "sluice_queue_units",
            "Units of work by state: ready (no worker holds it: a job not yet split counts "
            "one), held (a worker holds its lease). Read from Redis; scale on ready + held.",
            labels=["state"],
        )
        units.add_metric(["ready"], stats.ready_units)
        units.add_metric(["held"], stats.held_units)
        yield units
        yield GaugeMetricFamily(
            "sluice_queue_oldest_ready_age_seconds",
            "How long the longest-waiting ready work has waited since it became due, or since "
            "its job last had a unit handed out (0: none waiting).",
            value=stats.oldest_ready_age_s,
        )
        yield GaugeMetricFamily(
            "sluice_workers_live",
            "Workers whose heartbeat is fresh, across the namespace.",
            value=stats.workers,
        )
        yield from _per_queue(stats)


def _per_queue(stats: QueueStats) -> Iterator[GaugeMetricFamily]:
    """The figures above that are told apart by queue ("default" and each named queue), for
    scaling the workers of one queue on its own backlog."""
    families = {
        "ready": GaugeMetricFamily(
            "sluice_queue_ready_jobs",
            "Jobs with work due that no worker has taken, by queue.",
            labels=["queue"],
        ),
        "deferred": GaugeMetricFamily(
            "sluice_queue_deferred_jobs",
            "Jobs not to run before a later time, by queue.",
            labels=["queue"],
        ),
        "ready_units": GaugeMetricFamily(
            "sluice_queue_ready_units",
            "Units no worker holds, by queue (lapsed leases are counted in sluice_queue_units "
            "only: the lease set is shared).",
            labels=["queue"],
        ),
        "oldest_ready_age_s": GaugeMetricFamily(
            "sluice_queue_oldest_ready_age_by_queue_seconds",
            "How long the longest-waiting ready work of the queue has waited (a job of "
            "priority p counts p minutes more: its head start).",
            labels=["queue"],
        ),
    }
    for name, figures in stats.queues.items():
        for field, family in families.items():
            family.add_metric([name], getattr(figures, field))
    yield from families.values()


QUEUE = QueueCollector()
REGISTRY.register(QUEUE)
