"""One attempt at one unit: check its job, feed its inputs to the stages, wait for them, and
write how it ended — one `Outcome`, one fenced ending.

It replaces arq's ``Worker.run_job`` (two round trips of its own per job beside Sluice's
status writes): the claim has read the job and counted the try already, and the ending is
one script call batched with every other unit ending at the same moment.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import structlog

from producer.contract.keys import Keys
from producer.contract.status import Field
from producer.redis.backoff import jittered_s
from producer.redis.typed import Redis
from worker.errors import JobFailed, described
from worker.lifecycle.claim import Unit
from worker.lifecycle.deadlines import Deadlines
from worker.lifecycle.endings import UNSTORED, Endings, Entry, flat
from worker.lifecycle.job import Job, Jobs, unit_inputs
from worker.lifecycle.lease import Leases
from worker.lifecycle.outcome import (
    LABELS,
    Cancelled,
    Done,
    Failed,
    HandedBack,
    LeaseLost,
    Outcome,
    RetryLater,
)
from worker.observe import instrument
from worker.observe.logging import JOB_FIELDS
from worker.observe.tracing import process_span
from worker.settings import WorkerConfig
from worker.stages.engine import Engine
from worker.stages.items import Item, JobRun, StageCounters

log = structlog.get_logger("sluice.job")


@dataclass
class Lifecycle:
    """What every unit attempt of this worker shares."""

    config: WorkerConfig
    keys: Keys
    redis: Redis
    engine: Engine
    jobs: Jobs
    leases: Leases
    endings: Endings
    name: str
    draining: asyncio.Event
    deadlines: Deadlines  # the jobs' timeouts, which cut their feeding short
    tracing: bool = False  # a tracer provider was set up before start-up: a span per unit
    # inputs of held units not yet fed to the stages: the claim sizes itself by them
    unfed: int = 0
    fed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False)
class Attempt:
    """One attempt at one unit, as the worker's loop steers it."""

    unit: Unit
    claimed_at: float  # monotonic, when the claim was sent: the lease surely lasts from then
    aborted: bool = False  # its job was cancelled (`sluice cancel`)
    task: asyncio.Task[Outcome] | None = None
    fed: int = 0  # inputs submitted to the stages
    counters: StageCounters | None = None  # a done unit's counters not written yet
    plain: bool = False  # ... and the status hash holds none: set them, do not add
    job: Job | None = None  # its job, once checked
    # the records of its last batch, which the store stage left to the ending to write
    records: list[bytes | str] = field(default_factory=list)

    def abort(self) -> None:
        """Its job was cancelled: stop now, write nothing."""
        self.aborted = True
        if self.task is not None:
            self.task.cancel()


async def run_attempt(life: Lifecycle, attempt: Attempt) -> Outcome:
    """Run the attempt and write its ending; its outcome (for the loop and the metrics).

    The loop counted the unit's inputs in ``life.unfed`` when it claimed the unit."""
    unit = attempt.unit
    start = time.perf_counter()
    token = JOB_FIELDS.set({"job_id": unit.job_id, "unit": unit.index, "worker": life.name})
    pipeline = ""
    try:
        job, outcome = _check(life, unit)
        if job is not None:
            attempt.job, pipeline = job, job.spec.pipeline
            instrument.unit_started(pipeline, unit.due_ms)
            outcome = await _traced(life, attempt, job)
        life.unfed -= unit.size - attempt.fed
        attempt.fed = unit.size
        life.fed.set()
        outcome = await _end(life, attempt, pipeline, outcome)
    finally:
        life.unfed -= unit.size - attempt.fed
        JOB_FIELDS.reset(token)
    instrument.unit_finished(pipeline, LABELS[type(outcome)], time.perf_counter() - start)
    return outcome


def _check(life: Lifecycle, unit: Unit) -> tuple[Job | None, Outcome]:
    """The unit's job, if it may run; else how the attempt ends."""
    try:
        job = life.jobs.get(unit)
    except JobFailed as exc:
        log.warning("job failed", error=str(exc))
        return None, Failed(str(exc))
    most, named = _max_tries(life.config, job)
    if unit.tries > most:
        log.warning("unit out of tries", tries=unit.tries - 1)
        return None, Failed(
            f"gave up after {most} tries ({named}): every attempt at "
            f"inputs {unit.first}-{unit.end - 1} was cut off (its worker died or stopped)"
        )
    if time.time() - unit.started_at >= _timeout_s(life.config, job):
        return None, Failed(_timed_out(life.config, job))
    return job, Done()


def _timeout_s(config: WorkerConfig, job: Job) -> float:
    """The job's own timeout (set at enqueue), else SLUICE_JOB_TIMEOUT_S."""
    return job.spec.timeout_s or config.job_timeout_s


def _max_tries(config: WorkerConfig, job: Job) -> tuple[int, str]:
    """The job's own max tries (set at enqueue), else SLUICE_MAX_TRIES; and which it is."""
    if job.spec.max_tries is not None:
        return job.spec.max_tries, "max_tries set at enqueue"
    return config.max_tries, "SLUICE_MAX_TRIES"


def _timed_out(config: WorkerConfig, job: Job) -> str:
    if job.spec.timeout_s is not None:
        return f"job timed out after {job.spec.timeout_s:g} s (timeout_s set at enqueue)"
    return f"job timed out after {config.job_timeout_s:g} s (SLUICE_JOB_TIMEOUT_S)"


async def _traced(life: Lifecycle, attempt: Attempt, job: Job) -> Outcome:
    fields = JOB_FIELDS.get() or {}
    JOB_FIELDS.set({**fields, "pipeline": job.spec.pipeline})
    if not life.tracing:  # no span, not even a no-op one: this runs for every unit
        return await _run(life, attempt, job)
    carrier = job.spec.trace
    with process_span(
        life.keys.for_job(job.job_id).named_queue(job.spec.queue),
        job.job_id,
        job.spec.pipeline,
        carrier,
        attempt.unit.tries,
    ):
        return await _run(life, attempt, job)


async def _run(life: Lifecycle, attempt: Attempt, job: Job) -> Outcome:
    unit, engine = attempt.unit, life.engine
    run = JobRun(job.job_id, job.pipeline, job.options, unit.field, unit.token)
    life.leases.hold(unit, run, attempt.claimed_at)
    engine.begin(run)
    event = "job started" if unit.index == 0 else "unit started"
    log.info(event, inputs=unit.size, attempt=unit.tries, units=unit.units)
    remaining_s = unit.started_at + _timeout_s(life.config, job) - time.time()
    try:
        cut_short = await _feed(life, attempt, run, job, remaining_s)
    except asyncio.CancelledError:
        # aborted (`sluice cancel`), or stopped at once (second signal, grace over)
        await _stop(engine, run)
        return Cancelled() if attempt.aborted else HandedBack(undo_try=life.draining.is_set())
    except TimeoutError:
        await _stop(engine, run)
        log.warning("job failed", error=_timed_out(life.config, job))
        return Failed(_timed_out(life.config, job))
    except JobFailed as exc:
        await _stop(engine, run)
        return Failed(str(exc))
    except Exception as exc:  # Redis refused the records, or a bug: try again later
        await _stop(engine, run)
        return _retry_or_fail(life.config, job, unit, exc)
    finally:
        life.leases.drop(unit)
        attempt.records = run.last_records
    if run.lost:
        await engine.end(run)
        return LeaseLost()
    if cut_short:
        await engine.end(run)
        log.info("unit handed back to the queue", stored_now=run.finished)
        return HandedBack(undo_try=True)
    # the hash holds no counters yet when this is the job's only unit and nothing of it was
    # written: they are set, not added (no read-modify-write in the ending)
    attempt.plain = unit.units == 1 and not unit.counted and not run.counters_written
    attempt.counters = await engine.finish(run)
    return Done()


async def _feed(life: Lifecycle, attempt: Attempt, run: JobRun, job: Job, timeout_s: float) -> bool:
    """Submit the unit's inputs until done or draining; wait for those submitted. True if cut
    short (draining, or the lease lost)."""
    engine, unit, cut_short = life.engine, attempt.unit, False
    async with life.deadlines.limit(timeout_s):
        inputs = unit_inputs(life.redis, life.keys, job, unit, life.config)
        async for index, uri, error in inputs:
            if life.draining.is_set() or run.stopped() or run.fatal is not None:
                cut_short = True
                break
            item = Item(run, index, uri)
            if error is not None:
                item.fail(error)
            await engine.submit(item)
            attempt.fed += 1
            life.unfed -= 1
            life.fed.set()
        run.all_submitted()
        await run.done.wait()
    if run.fatal is not None:  # a transform or fetcher raised JobFailed: the job fails
        raise JobFailed(run.fatal)
    if run.error:
        raise JobError(run.error)
    return cut_short


class JobError(Exception):
    """Something went wrong for the unit as a whole; it is retried with backoff."""


def _retry_or_fail(config: WorkerConfig, job: Job, unit: Unit, exc: Exception) -> Outcome:
    """An unexpected error: try the unit again later with backoff, until the tries run out."""
    error = described(exc)
    if not isinstance(exc, JobError):
        log.exception("unit failed unexpectedly", error=error)
    if unit.tries >= _max_tries(config, job)[0]:
        error = f"failed after {unit.tries} tries: {error}"
        log.warning("job failed", error=error)
        return Failed(error)
    delay = jittered_s(unit.tries, config.retry_backoff_s, config.retry_backoff_max_s)
    log.warning("unit error, will retry", error=error, retry_in_s=round(delay, 2))
    return RetryLater(error, delay)


async def _stop(engine: Engine, run: JobRun) -> None:
    run.cancel()  # its inputs still queued in the stages are dropped
    await engine.end(run)


async def _end(life: Lifecycle, attempt: Attempt, pipeline: str, outcome: Outcome) -> Outcome:
    """Write the ending the outcome calls for (fenced by the unit's token), with the unit's
    last records; the outcome, or the retry that records Redis refused call for."""
    unit = attempt.unit
    entry = _entry(attempt, pipeline, outcome)
    if entry is None:
        return outcome
    records, attempt.records = attempt.records, []
    code = await life.endings.send(unit.job_id, entry, records)
    if code.startswith(UNSTORED) and attempt.job is not None:
        # as when the store stage cannot write a unit's records: try it again later
        error = JobError(f"cannot store results: {code.removeprefix(UNSTORED)}")
        log.warning("cannot store a job's records", error=str(error))
        # the release carries the counters the done ending would have
        return await _end(
            life, attempt, pipeline, _retry_or_fail(life.config, attempt.job, unit, error)
        )
    if code in ("complete", "failed", "resumed"):
        instrument.job_finished(pipeline, code)
        life.jobs.forget(unit.job_id)
        log.info(f"job {code}")
    elif code == "lost":
        log.warning("lease lost: ending not written", job_id=unit.job_id, unit=unit.index)
    elif code not in ("ok", "released"):
        log.error("cannot write a unit's ending", job_id=unit.job_id, error=code)
    return outcome


def _entry(attempt: Attempt, pipeline: str, outcome: Outcome) -> Entry | None:
    """The ending the outcome calls for (`worker.lifecycle.endings.Entry`)."""
    unit = attempt.unit
    head = (unit.job_id, unit.index, unit.token)
    # a done unit's (also when Redis refused its last records and it is retried instead)
    counters = tuple(flat(attempt.counters.nonzero(), [])) if attempt.counters else ()
    match outcome:
        case Done():
            return Entry("done", *head, plain=int(attempt.plain), counters=counters)
        case RetryLater(error=error, delay_s=delay_s):
            why = (Field.ERROR.value, error)  # for its "retrying" event
            delay_ms = int(delay_s * 1000)
            return Entry("release", *head, delay_ms=delay_ms, fields=why, counters=counters)
        case HandedBack(undo_try=undo):
            return Entry("release", *head, undo_try=int(undo))
        case Failed(error=error):
            about = {Field.ERROR.value: error}
            if pipeline:
                about[Field.PIPELINE.value] = pipeline
            return Entry("fail", *head, fields=tuple(flat(about, [])))
        case _:  # Cancelled, LeaseLost: the unit is not this worker's to write for
            return None
