"""The producer's OpenTelemetry span: one PRODUCER span at enqueue, its context carried in
the job for the worker's span to follow. A no-op without the `tracing` extra
(`producer.contract.tracing`). Spans follow OpenTelemetry's messaging conventions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from producer.contract.tracing import SYSTEM, propagate, trace, tracing_on


@contextlib.contextmanager
def publish_span(
    queue: str, job_ids: Sequence[str], pipeline: str
) -> Iterator[dict[str, str] | None]:
    """A PRODUCER span around an enqueue of one job or a batch; yields the carrier to put
    in the jobs (or None)."""
    if not tracing_on():
        yield None
        return
    tracer = trace.get_tracer("sluice.producer")
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "publish",
        "messaging.destination.name": queue,
        "sluice.pipeline": pipeline,
    }
    if len(job_ids) == 1:
        attributes["messaging.message.id"] = job_ids[0]
    else:
        attributes["messaging.batch.message_count"] = len(job_ids)
    with tracer.start_as_current_span(
        f"publish {queue}", kind=trace.SpanKind.PRODUCER, attributes=attributes
    ):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        yield carrier or None
