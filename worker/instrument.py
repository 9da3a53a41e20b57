"""Recording metrics from the worker's hot paths, cheaply.

The stages call these once per input (fetch) or once per batch (transform, store), with the
labelled children looked up once and cached, so recording costs a few hundred nanoseconds per
input. Units and jobs are counted by their attempts and endings (`worker.lifecycle.attempt`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from prometheus_client import Counter, Histogram

from producer.contract.wire import now_ms
from worker import metrics
from worker.registry import REGISTRY
from worker.stages.items import Item

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


def fetched(item: Item) -> None:
    """One input left the fetch stage."""
    _FETCH_S.observe(item.fetch_s)
    pipeline = item.run.pipeline.name
    if item.ok:
        _items(pipeline, "fetch", "ok").inc()
    else:
        _items(pipeline, "fetch", "error").inc()
        _fetch_errors(fetch_error_kind(item.error or "")).inc()


def transformed(batch: Sequence[Item]) -> None:
    """A batch of one job's inputs left the transform stage."""
    ok = 0
    for item in batch:
        ok += item.ok
        if item.transform_s:  # 0 when its process died before it reported a time
            _TRANSFORM_S.observe(item.transform_s)
    pipeline = batch[0].run.pipeline.name
    if ok:
        _items(pipeline, "transform", "ok").inc(ok)
    if len(batch) > ok:
        _items(pipeline, "transform", "error").inc(len(batch) - ok)


def stored(pipeline: str, items: Sequence[Item]) -> None:
    """Records of one job were written (part of one batched write)."""
    ok = sum(item.ok for item in items)
    if ok:
        _items(pipeline, "store", "ok").inc(ok)
    if len(items) > ok:
        _items(pipeline, "store", "error").inc(len(items) - ok)


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
