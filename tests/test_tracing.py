"""OpenTelemetry tracing: a producer span at enqueue, a consumer span per job, one trace."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from producer import Client, JobState
from producer.redis.typed import Redis
from tests.support.workers import WorkerFactory
from worker.observe.tracing import process_span

EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The in-memory exporter behind the global tracer provider, emptied for each test."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


async def test_enqueue_records_a_producer_span_and_carries_its_context(
    client: Client, redis: Redis, spans: InMemorySpanExporter
) -> None:
    """Enqueue makes a PRODUCER span; the job's envelope carries its traceparent."""
    job_id = await client.enqueue("text-stats", ["data:,traced"])
    [span] = spans.get_finished_spans()
    assert span.name == f"publish {client.keys.queue}"
    assert span.kind == trace.SpanKind.PRODUCER
    assert span.attributes is not None
    assert span.attributes["messaging.message.id"] == job_id
    assert span.attributes["messaging.destination.name"] == client.keys.queue
    envelope = await redis.hget(client.keys.job(job_id), "envelope")
    carrier = orjson.loads(envelope or b"")["k"]["trace"]
    assert f"{span.context.trace_id:032x}" in carrier["traceparent"]


async def test_consumer_span_continues_the_producer_trace(
    client: Client, redis: Redis, spans: InMemorySpanExporter
) -> None:
    """The worker's CONSUMER span for a job is a child of the producer span, in one trace."""
    job_id = await client.enqueue("text-stats", ["data:,traced"])
    envelope = await redis.hget(client.keys.job(job_id), "envelope")
    carrier = orjson.loads(envelope or b"")["k"]["trace"]
    with process_span(client.keys.queue, job_id, "text-stats", carrier, attempt=1):
        pass
    producer, consumer = spans.get_finished_spans()
    assert consumer.kind == trace.SpanKind.CONSUMER
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.context.trace_id == producer.context.trace_id


async def test_traced_job_runs_through_a_worker(
    client: Client, workers: WorkerFactory, spans: InMemorySpanExporter
) -> None:
    """A job carrying a trace context is accepted and completed by a real worker."""
    workers()
    job_id = await client.enqueue("text-stats", ["data:,traced"])
    assert (await client.wait(job_id, timeout_s=60)).state == JobState.COMPLETE
