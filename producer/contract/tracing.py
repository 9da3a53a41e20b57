"""Optional OpenTelemetry tracing, the part producer and worker share: whether spans are
recorded at all, and the messaging system they name. The producer's span is in
`producer.client.tracing`, the worker's in `worker.observe.tracing`; the trace context
travels in the job itself (`JobSpec.trace`).

Active only when the `tracing` extra is installed (``pip install sluice[tracing]``); without
it ``trace`` and ``propagate`` are None and no span is made.
"""

from __future__ import annotations

try:
    from opentelemetry import propagate, trace
except ImportError:  # the extra is not installed
    trace = None  # type: ignore[assignment]
    propagate = None  # type: ignore[assignment]

__all__ = ["SYSTEM", "propagate", "trace", "tracing_on"]

SYSTEM = "redis"  # messaging.system: the broker is Redis (through arq)


def tracing_on() -> bool:
    """Whether a span would be recorded: the extra is installed and a provider is set up
    (until then OpenTelemetry's proxy provider makes no-op spans, at a cost per job)."""
    return trace is not None and not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider
    )
