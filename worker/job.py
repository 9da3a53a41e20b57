"""The arq job function: validate a job, feed its inputs to the pipeline, say how it ended.

It writes nothing final itself: it returns the job's `FinalStatus` (or raises arq's Retry /
RetryJob), and the attempt (`worker.attempt`) writes that with arq's bookkeeping in one step.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog
from arq.worker import Retry, RetryJob
from pydantic import ValidationError

from producer.keys import Keys
from producer.models import JobSpec
from producer.validation import describe
from producer.wire import dumps
from worker.claim import Claimed
from worker.endings import FinalStatus
from worker.envelope import MALFORMED
from worker.errors import JobFailed
from worker.logging import JOB_FIELDS
from worker.registry import REGISTRY, Pipeline
from worker.settings import WorkerConfig
from worker.stages.engine import Engine
from worker.stages.items import Item, JobRun
from worker.tracing import process_span

PAGE = 1000  # inputs read and checked against stored records per round trip

log = structlog.get_logger("sluice.job")


@dataclass
class WorkerState:
    """What every job of this worker shares; kept in arq's ctx under "sluice"."""

    config: WorkerConfig
    keys: Keys
    engine: Engine
    name: str
    draining: asyncio.Event
    tracing: bool = False  # a tracer provider was set up before start-up: a span per job


async def run_job(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> FinalStatus:
    state: WorkerState = ctx["sluice"]
    claim: Claimed = ctx["sluice_claim"]
    job_id = claim.job_id
    named = kwargs.get("pipeline") if isinstance(kwargs.get("pipeline"), str) else None
    token = JOB_FIELDS.set({"job_id": job_id, "worker": state.name, "pipeline": named})
    try:
        if not state.tracing:  # no span, not even a no-op one: this runs for every job
            return await _attempt(ctx, state, claim, named, args, kwargs)
        carrier = kwargs.get("trace") if isinstance(kwargs.get("trace"), dict) else None
        with process_span(state.keys.queue, job_id, named, carrier, int(ctx["job_try"])):
            return await _attempt(ctx, state, claim, named, args, kwargs)
    finally:
        JOB_FIELDS.reset(token)


async def _attempt(
    ctx: dict[str, Any],
    state: WorkerState,
    claim: Claimed,
    named: str | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> FinalStatus:
    job_id = claim.job_id
    try:
        spec, pipeline, options = _parse(args, kwargs, state.config)
        total = await _count_inputs(ctx, state, job_id, spec)
    except JobFailed as exc:
        log.warning("job failed", error=str(exc))
        return FinalStatus.failure(str(exc), named, _spec_of(kwargs))
    if not claim.has_total:  # written with raw Redis commands: no status hash at enqueue
        fields = {"pipeline": spec.pipeline, "total": total}
        await ctx["redis"].hset(state.keys.job(job_id), mapping=fields)
    return await _run(ctx, state, claim, spec, pipeline, options, total)


def _spec_of(kwargs: dict[str, Any]) -> bytes | None:
    """The job as enqueued, kept for `retry` (None if it was not even a JSON object)."""
    return None if MALFORMED in kwargs else dumps(kwargs)


def _parse(
    args: tuple[Any, ...], kwargs: dict[str, Any], config: WorkerConfig
) -> tuple[JobSpec, Pipeline, dict[str, Any]]:
    if MALFORMED in kwargs:
        raise JobFailed(str(kwargs[MALFORMED]))
    if args:
        raise JobFailed("job payload must carry the job in 'k', with 'a' empty")
    try:
        spec = JobSpec.model_validate(kwargs)
    except ValidationError as exc:
        raise JobFailed(describe(exc)) from None
    pipeline = REGISTRY.pipelines.get(spec.pipeline)
    if pipeline is None:
        known = ", ".join(sorted(REGISTRY.pipelines))
        raise JobFailed(f"unknown pipeline {spec.pipeline!r}; registered: {known}")
    try:
        options = pipeline.check_options(spec.options)
    except ValueError as exc:
        raise JobFailed(str(exc)) from None
    if spec.inputs is not None and len(spec.inputs) > config.max_inputs_per_job:
        raise JobFailed(
            f"too many inputs: {len(spec.inputs)}, over {config.max_inputs_per_job} "
            "(SLUICE_MAX_INPUTS_PER_JOB)"
        )
    return spec, pipeline, options


async def _count_inputs(ctx: dict[str, Any], state: WorkerState, job_id: str, spec: JobSpec) -> int:
    if spec.inputs is not None:
        total = len(spec.inputs)
    else:
        total = int(await ctx["redis"].llen(state.keys.inputs(job_id)))
    if total == 0:
        raise JobFailed("the job has no inputs")
    return total


async def _run(
    ctx: dict[str, Any],
    state: WorkerState,
    claim: Claimed,
    spec: JobSpec,
    pipeline: Pipeline,
    options: dict[str, Any],
    total: int,
) -> FinalStatus:
    job_id, attempt, already = claim.job_id, int(ctx["job_try"]), claim.stored
    log.info("job started", total=total, already_stored=already, attempt=attempt)
    run = JobRun(job_id, pipeline, options)
    state.engine.begin(run)
    try:
        inputs = _pending_inputs(ctx["redis"], state.keys, job_id, spec, total, resume=already > 0)
        handed_back = await _feed(state, run, inputs)
    except asyncio.CancelledError:
        # stopped at once (second signal, grace over, or cancelled): arq re-queues it unless
        # it was cancelled, and the next attempt resumes from the stored records
        await _stop(state, run)
        raise
    except TimeoutError:
        await _stop(state, run)
        error = f"job timed out after {state.config.job_timeout_s:g} s (SLUICE_JOB_TIMEOUT_S)"
        log.warning("job failed", error=error)
        return FinalStatus.failure(error, spec.pipeline, _spec_json(spec))
    except Exception as exc:
        await _stop(state, run)
        return _retry_or_fail(state, spec, attempt, exc)
    if handed_back:
        await state.engine.end(run)
        log.info("job handed back to the queue", stored_now=run.finished)
        raise RetryJob()  # arq keeps it queued for another worker
    log.info("job complete", total=total, processed=run.submitted)
    final: dict[str, str | int | float] = {"total": total, "fetched": total, "transformed": total}
    counters = await state.engine.finish(run)
    if claim.counted or run.counters_written:
        return FinalStatus("complete", final, counters=counters)  # added to what is there
    # the hash holds no counters yet: these are their values (no read-modify-write)
    return FinalStatus("complete", {**counters.nonzero(), **final})


async def _stop(state: WorkerState, run: JobRun) -> None:
    run.cancel()  # its inputs still queued in the stages are dropped
    await state.engine.end(run)


def _spec_json(spec: JobSpec) -> bytes:
    return dumps(spec.model_dump(exclude_none=True))


def _retry_or_fail(state: WorkerState, spec: JobSpec, attempt: int, exc: Exception) -> FinalStatus:
    """An unexpected error: try again later with backoff, until the tries run out."""
    error = f"{type(exc).__name__}: {exc}"
    if attempt >= state.config.max_tries:
        error = f"failed after {attempt} tries: {error}"
        log.warning("job failed", error=error)
        return FinalStatus.failure(error, spec.pipeline, _spec_json(spec))
    delay = backoff_s(attempt, state.config.retry_backoff_s, state.config.retry_backoff_max_s)
    log.warning("job error, will retry", error=error, attempt=attempt, retry_in_s=round(delay, 2))
    raise Retry(defer=delay)


class JobError(Exception):
    """Something went wrong for the job as a whole; it is retried with backoff."""


def backoff_s(attempt: int, base_s: float, cap_s: float) -> float:
    """Exponential backoff with jitter: between half and all of base × 2^(attempt-1), capped."""
    return min(cap_s, base_s * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)


async def _feed(state: WorkerState, run: JobRun, inputs: AsyncIterator[tuple[int, str]]) -> bool:
    """Submit inputs until done or draining; wait for those submitted. True if cut short."""
    cut_short = False
    async with state.engine.deadlines.limit(state.config.job_timeout_s):
        async for index, uri in inputs:
            if state.draining.is_set():
                cut_short = True
                break
            await state.engine.submit(Item(run, index, uri))
        run.all_submitted()
        await run.done.wait()
    if run.error:
        raise JobError(run.error)
    return cut_short


async def _pending_inputs(
    redis: Any, keys: Keys, job_id: str, spec: JobSpec, total: int, resume: bool
) -> AsyncIterator[tuple[int, str]]:
    """(index, uri) of each input without a stored record, a page at a time.

    Only a job with records already stored (``resume``) needs them looked up.
    """
    for first in range(0, total, PAGE):
        last = min(total, first + PAGE)
        if spec.inputs is not None:
            page = spec.inputs[first:last]
        else:
            raw = await redis.lrange(keys.inputs(job_id), first, last - 1)
            page = [value.decode("utf-8", "replace") for value in raw]
        if resume:
            stored = await redis.hmget(keys.results(job_id), list(range(first, last)))
        else:
            stored = [None] * len(page)
        for offset, (uri, record) in enumerate(zip(page, stored, strict=False)):
            if record is None:
                yield first + offset, uri
