"""Recording metrics from the worker's hot paths, cheaply.

The stages call these once per input (fetch) or once per batch (transform, store), with the
labelled children looked up once and cached, so recording costs a few hundred nanoseconds per
input. Units and jobs are counted by their attempts and endings (`worker.lifecycle.attempt`).
Every call takes plain values (names, counts, seconds), never the stages' own objects.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from prometheus_client import Counter, Histogram

from producer.contract.wire import now_ms
from worker.observe import metrics
from worker.registry import REGISTRY

_FETCH_S = metrics.STAGE_DURATION.labels("fetch")
_TRANSFORM_S = metrics.STAGE_DURATION.labels("transform")
_STORE_S = metrics.STAGE_DURATION.labels("store")


@functools.cache
def _items(pipeline: str, stage: str, outcome: str) -> Counter:
    return metrics.ITEMS.labels(pipeline, stage, outcome)


@functools.cache
def _fetch_errors(kind: str) -> Counter:
    return metrics.FETCH_ERRORS.labels(kind)


@functools.cache
def _unit_started(pipeline: str) -> tuple[Counter, Histogram]:
    return metrics.UNITS_STARTED.labels(pipeline), metrics.JOB_QUEUE_WAIT.labels(pipeline)


@functools.cache
def _unit_finished(pipeline: str, outcome: str) -> tuple[Counter, Histogram]:
    return metrics.UNITS_FINISHED.labels(pipeline, outcome), metrics.UNIT_DURATION.labels(
        pipeline, outcome
    )


def unit_started(pipeline: str, due_ms: int) -> None:
    """A unit attempt started, its work due since ``due_ms`` (ms epoch)."""
    started, queue_wait = _unit_started(pipeline_label(pipeline))
    started.inc()
    queue_wait.observe(max(0.0, (now_ms() - due_ms) / 1000))


def unit_finished(pipeline: str, outcome: str, duration_s: float) -> None:
    """A unit attempt ended (``outcome``: a label of `worker.lifecycle.outcome.LABELS`)."""
    finished, duration = _unit_finished(pipeline_label(pipeline), outcome)
    finished.inc()
    duration.observe(duration_s)


def job_finished(pipeline: str, outcome: str) -> None:
    """This worker's ending closed a job: complete, failed, or resumed for missing records."""
    metrics.JOBS_FINISHED.labels(pipeline_label(pipeline), outcome).inc()


def fetched(pipeline: str, elapsed_s: float, error: str | None) -> None:
    """One input left the fetch stage, after ``elapsed_s``; ``error``: why it failed there."""
    _FETCH_S.observe(elapsed_s)
    if error is None:
        _items(pipeline, "fetch", "ok").inc()
    else:
        _items(pipeline, "fetch", "error").inc()
        _fetch_errors(fetch_error_kind(error)).inc()


@functools.cache
def _rate(kind: str, limit: str) -> tuple[Histogram, Counter]:
    return metrics.RATE_LIMIT_WAIT.labels(kind, limit), metrics.RATE_LIMITED.labels(kind, limit)


def rate_waited(kind: str, limit: str, wait_s: float) -> None:
    """A request under a rate limit (its rule: ``kind`` and ``limit``, bounded by the
    settings) got its slot after ``wait_s`` (0: at once)."""
    waited, limited = _rate(kind, limit)
    waited.observe(wait_s)
    if wait_s > 0:
        limited.inc()


def transformed(pipeline: str, ok: int, failed: int, elapsed_s: Iterable[float]) -> None:
    """A batch of one job's inputs left the transform stage: ``ok`` with a result, ``failed``
    without; ``elapsed_s`` the time of each transform (0 when its process died before it
    reported one, which is not recorded)."""
    for seconds in elapsed_s:
        if seconds:
            _TRANSFORM_S.observe(seconds)
    if ok:
        _items(pipeline, "transform", "ok").inc(ok)
    if failed:
        _items(pipeline, "transform", "error").inc(failed)


def stored(pipeline: str, ok: int, failed: int) -> None:
    """Records of one job were written (part of one batched write)."""
    if ok:
        _items(pipeline, "store", "ok").inc(ok)
    if failed:
        _items(pipeline, "store", "error").inc(failed)


def store_batch(elapsed_s: float) -> None:
    """One batched write to Redis took ``elapsed_s``."""
    _STORE_S.observe(elapsed_s)


_HTTP_STATUS = re.compile(r"^HTTP ([1-5])\d\d\b")
# (kind, prefixes) tried in order on the messages the built-in fetchers write
_PREFIXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unsupported_scheme", ("no fetcher for scheme",)),
    ("fetcher_error", ("fetch failed:",)),
    ("timeout", ("timed out",)),
    ("not_found", ("no such file",)),
    ("invalid", ("invalid URL", "malformed data URI", "bad base64", "not a data URI", "file URI")),
)


def fetch_error_kind(message: str) -> str:
    """A small, fixed set of kinds for a fetch error message (a metric label, never the URL)."""
    for kind, prefixes in _PREFIXES:
        if message.startswith(prefixes):
            return kind
    if "refused: " in message:
        return "refused"
    if "over the limit of" in message:
        return "too_large"
    status = _HTTP_STATUS.match(message)
    if status:
        return f"http_{status.group(1)}xx"
    if "redirect" in message:
        return "redirect"
    if message.startswith("cannot fetch"):
        return "connection"
    if message.startswith("cannot read"):
        return "io"
    return "other"


def pipeline_label(name: object) -> str:
    """The pipeline if it is a registered one, else "unknown" (labels stay bounded)."""
    if isinstance(name, str) and name in REGISTRY.pipelines:
        return name
    return metrics.UNKNOWN_PIPELINE
