"""Job ids read back from Redis, where anyone may have written anything: shown without fail,
their keys rebuilt byte for byte, and their statuses read in batches.

A stored id need not be valid UTF-8, nor follow the id grammar (other languages write jobs
with plain commands). Readers never decode one strictly: an id is shown with each byte
that is not UTF-8 as ``\\xNN`` (so its shown form is never a valid id, and nothing is offered
on it), and its keys are built from the bytes themselves, so its status is still read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from producer.client.inspect import job_state, named_queue
from producer.contract.errors import InvalidJob
from producer.contract.keys import Keys
from producer.contract.models import JobState, JobStatus
from producer.contract.validation import check_job_id
from producer.contract.wire import now_ms, status_from_hash
from producer.redis.typed import Redis


def shown_id(raw: bytes) -> str:
    """A stored id as text: itself when UTF-8, else with each stray byte as ``\\xNN``."""
    return raw.decode("utf-8", "backslashreplace")


def is_valid_id(job_id: str) -> bool:
    """Whether ``job_id`` follows the job id grammar (then it can be acted on)."""
    try:
        check_job_id(job_id)
    except InvalidJob:
        return False
    return True


def raw_key(key_of: Callable[[str], str], raw: bytes) -> bytes:
    """The key ``key_of`` names for the stored id ``raw``, as the exact bytes Redis holds
    (``surrogateescape`` carries stray bytes through the text `Keys` works in)."""
    return key_of(raw.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def decode_fields(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    """A hash read from Redis as text, never failing on bytes that are not UTF-8."""
    return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in raw.items()}


@dataclass(frozen=True)
class _Read:
    """What one round trip read about a job: its status hash, its queue score, and why the
    claim refused it (an id no job can have) if it did."""

    fields: dict[str, str]
    score: float | None
    refused: str | None


async def read_statuses(
    redis: Redis,
    keys: Keys,
    ids: Iterable[bytes],
    status: Callable[[str], Awaitable[JobStatus]],
) -> list[JobStatus]:
    """The statuses of these stored ids in one round trip for the common cases, in order.

    The state is `producer.client.inspect.job_state`'s; the rare job that needs more than its status
    hash and queue entry (written raw, expired unrun, ended by arq alone) is read with
    ``status`` when its id is text, and from what was read when it is not.
    """
    ids = list(ids)
    async with redis.pipeline(transaction=False) as pipe:
        for raw in ids:
            k = _shard(keys, raw)
            pipe.hgetall(raw_key(keys.job, raw))
            pipe.zscore(k.queue, raw)
            pipe.hget(k.refused, raw)
        replies = await pipe.execute()
    fields = [decode_fields(replies[3 * i]) for i in range(len(ids))]
    scores = [replies[3 * i + 1] for i in range(len(ids))]
    await _named_queue_scores(redis, keys, ids, fields, scores)
    now, out = now_ms(), []
    for i, raw in enumerate(ids):
        refused = replies[3 * i + 2]
        reason = None if refused is None else refused.decode("utf-8", "replace")
        read = _Read(fields[i], scores[i], reason)
        known = _known_status(shown_id(raw), read, now)
        if known is None:
            known = await _rare_status(raw, read, status)
        out.append(known)
    return out


async def _named_queue_scores(
    redis: Redis,
    keys: Keys,
    ids: list[bytes],
    fields: list[dict[str, str]],
    scores: list[float | None],
) -> None:
    """Fill in the scores of jobs that wait in a named queue (one more round trip, only when
    some do): the first read looked in the default queue."""
    named = [
        (i, queue)
        for i, f in enumerate(fields)
        if scores[i] is None and (queue := named_queue(f)) is not None
    ]
    if not named:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for i, queue in named:
            pipe.zscore(_shard(keys, ids[i]).named_queue(queue), ids[i])
        found = await pipe.execute()
    for (i, _), score in zip(named, found, strict=True):
        scores[i] = score


def _shard(keys: Keys, raw: bytes) -> Keys:
    """The view of the shard of a stored id (maybe not UTF-8)."""
    return keys.for_job(raw.decode("utf-8", "surrogateescape")) if keys.sharded else keys


def _known_status(job_id: str, read: _Read, now: int) -> JobStatus | None:
    if read.refused is not None and not read.fields:
        return JobStatus(job_id=job_id, state=JobState.FAILED, error=read.refused)
    state = job_state(read.fields, read.score, now) if read.fields else None
    return None if state is None else status_from_hash(job_id, read.fields, state)


async def _rare_status(
    raw: bytes, read: _Read, status: Callable[[str], Awaitable[JobStatus]]
) -> JobStatus:
    try:
        job_id = raw.decode()
    except UnicodeDecodeError:
        return _status_from_read(shown_id(raw), read)
    return await status(job_id)


def _status_from_read(job_id: str, read: _Read) -> JobStatus:
    """What can be told of a job whose id cannot be given to `read_status`."""
    if read.score is not None:
        queued = JobState.DEFERRED if read.score > now_ms() else JobState.QUEUED
        return status_from_hash(job_id, read.fields, queued)
    if read.fields:
        return status_from_hash(job_id, read.fields, JobState.FAILED)
    return JobStatus(job_id=job_id, state=JobState.NOT_FOUND)
