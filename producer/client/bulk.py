"""Enqueueing many jobs at once: a few hundred jobs per round trip (`Client.enqueue_many`).

One script call (``producer.contract.enqueue_scripts.ENQUEUE_MANY``) admits a chunk of jobs
with the same Lua that ``ENQUEUE`` admits one with, so a worker cannot tell them apart. The
jobs of one call get ids that sort in the order given: jobs due in the same millisecond run
in id order, so a bulk enqueue runs first-in, first-out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from producer.contract.errors import InvalidJob
from producer.contract.models import JobSpec
from producer.contract.settings import ClientSettings
from producer.contract.validation import check_count, check_input, check_payload_size
from producer.contract.wire import encode_job

BULK_JOBS = 500  # jobs per script call: ~0.1 MB of arguments, a few ms of Redis time


@dataclass(frozen=True, slots=True)
class Entry:
    """One job of a bulk enqueue, ready for the script."""

    job_id: str
    envelope: bytes
    total: int


def refused(job: int, reason: str) -> InvalidJob:
    """InvalidJob naming the job of the call that is wrong."""
    return InvalidJob(f"job {job}: {reason}", job=job, reason=reason)


def job_ids(count: int) -> Iterator[str]:
    """``count`` fresh ids that sort in order: a random prefix, then a sequence number."""
    prefix = uuid.uuid4().hex[:20]
    return (f"{prefix}{n:012x}" for n in range(count))


def checked_jobs(jobs: Iterable[Sequence[str]], settings: ClientSettings) -> list[Sequence[str]]:
    """Every job's inputs checked, or InvalidJob naming the first bad job and what is wrong."""
    checked: list[Sequence[str]] = []
    limit = settings.inline_inputs_max
    for n, inputs in enumerate(jobs):
        if isinstance(inputs, str) or not isinstance(inputs, list | tuple):
            raise refused(n, f"its inputs must be a list of URIs, got {type(inputs).__name__}")
        if not inputs:
            raise refused(n, "a job needs at least one input")
        if len(inputs) > limit:
            raise refused(
                n,
                f"{len(inputs)} inputs, over the {limit} a bulk enqueue sends inline "
                "(SLUICE_INLINE_INPUTS_MAX); enqueue it on its own",
            )
        try:
            check_count(len(inputs), settings)
            checked.append([check_input(i, value, settings) for i, value in enumerate(inputs)])
        except InvalidJob as exc:
            raise refused(n, str(exc)) from None
    return checked


def entries(
    spec: JobSpec,
    jobs: Sequence[Sequence[str]],
    ids: Iterable[str],
    enqueued_ms: int,
    settings: ClientSettings,
) -> list[Entry]:
    """The jobs' envelopes: ``spec`` (pipeline, options, trace) with each job's inputs."""
    out = []
    for n, (job_id, inputs) in enumerate(zip(ids, jobs, strict=True)):
        envelope = encode_job(spec.model_copy(update={"inputs": list(inputs)}), enqueued_ms)
        try:
            check_payload_size(len(envelope), settings)
        except InvalidJob as exc:
            raise refused(n, str(exc)) from None
        out.append(Entry(job_id, envelope, len(inputs)))
    return out
