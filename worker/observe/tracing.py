"""Optional OpenTelemetry tracing in the worker: a CONSUMER span per job, child of the
producer's span whose context the job carries. A no-op without the `tracing` extra.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from producer.contract.tracing import SYSTEM, propagate, trace, tracing_on


@contextlib.contextmanager
def process_span(
    queue: str, job_id: str, pipeline: str | None, carrier: Mapping[str, str] | None, attempt: int
) -> Iterator[Any]:
    """A CONSUMER span around one attempt at a job; yields the span (or None)."""
    if not tracing_on():
        yield None
        return
    parent = propagate.extract(dict(carrier)) if carrier else None
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": queue,
        "messaging.message.id": job_id,
        "sluice.attempt": attempt,
    }
    if pipeline:
        attributes["sluice.pipeline"] = pipeline
    tracer = trace.get_tracer("sluice.worker")
    with tracer.start_as_current_span(
        f"process {queue}", context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span
