"""What a unit needs of its job: the job read from its envelope and checked once per worker
(`Jobs`), and the unit's own inputs, a page at a time (`unit_inputs`).

The envelope of a job of many units is read and checked by the first of its units to reach
this worker and kept for the next ones (the claim is told not to send it again), so a job of
1,000 inline inputs in 10 units is not read 10 times. A job of one unit is not kept: no claim
of it follows, and each claim sends the script the list of the jobs kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from producer.contract.envelope import MALFORMED, load_envelope
from producer.contract.errors import InvalidJob
from producer.contract.keys import JOB_FUNCTION, Keys
from producer.contract.models import JobSpec
from producer.contract.settings import ClientSettings
from producer.contract.validation import check_input, describe
from producer.redis.typed import Redis
from worker.errors import JobFailed
from worker.lifecycle.claim import Unit
from worker.registry import REGISTRY, Pipeline

PAGE = 1000  # inputs read and checked against stored records per round trip
KEPT = 64  # jobs whose checked envelope a worker keeps


@dataclass(frozen=True, slots=True)
class Job:
    """A job as checked by this worker: the pipeline to run, its options, its inputs."""

    job_id: str
    run: int
    spec: JobSpec
    pipeline: Pipeline
    options: dict[str, Any]
    enqueued_ms: int = 0  # its envelope's enqueue time: which job of this id it is


class Jobs:
    """The jobs this worker holds units of, each read and checked once per run."""

    def __init__(self, config: ClientSettings) -> None:
        self.config = config
        self._kept: OrderedDict[str, Job] = OrderedDict()

    def cached(self) -> dict[str, tuple[int, int]]:
        """The jobs whose envelope the claim need not send, with the run this worker read and
        the envelope's enqueue time (ms): an id deleted, expired or lost with Redis and
        enqueued again is another job, sent again though its run is the same."""
        return {job_id: (job.run, job.enqueued_ms) for job_id, job in self._kept.items()}

    def get(self, unit: Unit) -> Job:
        """The unit's job, checked; JobFailed says why it cannot run."""
        kept = self._kept.get(unit.job_id)
        if kept is not None and kept.run == unit.run and unit.envelope is None:
            self._kept.move_to_end(unit.job_id)
            return kept
        if unit.envelope is None:  # kept once, dropped since: cannot happen, but say so
            raise JobFailed("the claim sent no envelope and this worker kept none")
        job = parse(unit.job_id, unit.run, unit.envelope, self.config, unit.total)
        if unit.units == 1:  # no other unit to claim: the claim need not be told of it
            return job
        self._kept[unit.job_id] = job
        if len(self._kept) > KEPT:
            self._kept.popitem(last=False)
        return job

    def forget(self, job_id: str) -> None:
        self._kept.pop(job_id, None)


def parse(job_id: str, run: int, raw: bytes, config: ClientSettings, listed: int = -1) -> Job:
    """Check a job's envelope: JobFailed says what is wrong with it. ``listed``: the inputs
    the claim counted in the job's inputs list when the envelope has none inline (-1: not
    known)."""
    if len(raw) > config.max_payload_bytes:
        raise JobFailed(
            f"job payload is {len(raw)} bytes, over the limit of {config.max_payload_bytes} "
            "(SLUICE_MAX_PAYLOAD_BYTES)"
        )
    envelope = load_envelope(raw)
    spec = _spec(envelope)
    pipeline = REGISTRY.pipelines.get(spec.pipeline)
    if pipeline is None:
        known = ", ".join(sorted(REGISTRY.pipelines))
        raise JobFailed(f"unknown pipeline {spec.pipeline!r}; registered: {known}")
    try:
        options = pipeline.check_options(spec.options)
    except ValueError as exc:
        raise JobFailed(str(exc)) from None
    if spec.inputs is not None:
        _check_count(len(spec.inputs), config)
    elif listed >= 0:  # a job written raw met no enqueue's checks: its list is held to them
        if listed == 0:
            raise JobFailed(
                "the job has no inputs: its envelope's 'inputs' is null or missing, and its "
                "inputs list is empty"
            )
        _check_count(listed, config)
    return Job(job_id, run, spec, pipeline, options, envelope["et"])


def _check_count(count: int, config: ClientSettings) -> None:
    if not count:
        raise JobFailed("the job has no inputs")
    if count > config.max_inputs_per_job:
        raise JobFailed(
            f"too many inputs: {count}, over {config.max_inputs_per_job} "
            "(SLUICE_MAX_INPUTS_PER_JOB)"
        )


def _spec(envelope: dict[str, Any]) -> JobSpec:
    """The job an envelope (from `load_envelope`) carries, or JobFailed saying why not."""
    kwargs = envelope["k"]
    if MALFORMED in kwargs:
        raise JobFailed(str(kwargs[MALFORMED]))
    if envelope["f"] != JOB_FUNCTION:
        raise JobFailed(f"job names function {envelope['f']!r}; Sluice runs {JOB_FUNCTION!r}")
    if envelope["a"]:
        raise JobFailed("job payload must carry the job in 'k', with 'a' empty")
    try:
        return JobSpec.model_validate(kwargs)
    except ValidationError as exc:
        raise JobFailed(describe(exc)) from None


async def unit_inputs(
    redis: Redis, keys: Keys, job: Job, unit: Unit, config: ClientSettings
) -> AsyncIterator[tuple[int, str, str | None]]:
    """(index, uri, error) of each of the unit's inputs without a stored record, a page at a
    time; ``error`` says why an input cannot even be fetched (it fails alone)."""
    end = unit.end
    if job.spec.inputs is not None:
        end = min(end, len(job.spec.inputs))
    elif end < 0:
        raise JobFailed("the job has no inputs")
    for first in range(unit.first, end, PAGE):
        last = min(end, first + PAGE)
        if job.spec.inputs is not None:
            page: Sequence[str | bytes] = list(job.spec.inputs[first:last])
        else:
            page = await redis.lrange(keys.inputs(job.job_id), first, last - 1)
        if unit.look_up_stored:
            stored = await redis.hmget(keys.results(job.job_id), list(range(first, last)))
        else:
            stored = [None] * len(page)
        for offset, (raw, record) in enumerate(zip(page, stored, strict=False)):
            if record is None:
                index = first + offset
                uri, error = _checked(index, raw, config)
                yield index, uri, error


def _checked(index: int, raw: str | bytes, config: ClientSettings) -> tuple[str, str | None]:
    """The input as text, and why it cannot be fetched (the enqueue limits, applied again:
    a job written with raw Redis commands never met them)."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            return raw.decode("utf-8", "backslashreplace")[:200], "input is not valid UTF-8"
    else:
        text = raw
    try:
        check_input(index, text, config)
    except InvalidJob as exc:
        return text[:200], str(exc).partition(": ")[2] or str(exc)
    return text, None
