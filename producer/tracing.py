"""Optional OpenTelemetry tracing: a producer span at enqueue, its context carried in the job.

Active only when the `tracing` extra is installed (``pip install sluice[tracing]``); without
it every function here is a no-op. Spans follow OpenTelemetry's messaging conventions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

try:
    from opentelemetry import propagate, trace
except ImportError:  # the extra is not installed
    trace = None  # type: ignore[assignment]
    propagate = None  # type: ignore[assignment]

SYSTEM = "redis"  # messaging.system: the broker is Redis (through arq)


def tracing_on() -> bool:
    """Whether a span would be recorded: the extra is installed and a provider is set up
    (until then OpenTelemetry's proxy provider makes no-op spans, at a cost per job)."""
    return trace is not None and not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider
    )


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
