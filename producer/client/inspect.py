"""Reading a job's state: Sluice's status hash first, the queue and arq's keys where it says
nothing. `job_state` is the one rule, shared with the dashboard's listing."""

from __future__ import annotations

from typing import Any

from producer.contract.envelope import MALFORMED, load_envelope
from producer.contract.keys import DEFAULT_QUEUE, Keys
from producer.contract.models import JobState, JobStatus
from producer.contract.status import Field
from producer.contract.wire import loads, now_ms, read_number, status_from_hash
from producer.redis.typed import Redis

FINAL = frozenset((JobState.COMPLETE, JobState.FAILED, JobState.CANCELLED))


def _decode(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in raw.items()}


def job_state(fields: dict[str, str], score: float | None, now: int) -> JobState | None:
    """The state the status hash and the job's queue entry (its score, if queued) say, or None
    when they say nothing (a job arq ended alone, or none at all).

    A job with units held is in progress though its later units may still wait in the queue;
    one started whose units no worker holds (handed back at shutdown, or waiting to be tried
    again) is queued.
    """
    state = fields.get(Field.STATE)
    if state in FINAL:
        return JobState(state)
    if state == JobState.IN_PROGRESS:
        return JobState.IN_PROGRESS if _held(fields) > 0 else JobState.QUEUED
    if score is not None:
        # a deferred job of priority > 0 has an earlier place than its time: the time wins
        due = max(score, read_number(fields.get(Field.NOT_BEFORE)))
        return JobState.DEFERRED if due > now else JobState.QUEUED
    return None


def named_queue(fields: dict[str, str]) -> str | None:
    """The queue the status hash names, when it is not the default one (which readers read
    along with the hash): its score is read from there."""
    queue = fields.get(Field.QUEUE)
    return queue if queue and queue != DEFAULT_QUEUE else None


def _held(fields: dict[str, str]) -> int:
    """Units of the job workers hold (a hash without the count: one, as before units)."""
    try:
        return int(fields.get(Field.HELD) or 1)
    except ValueError:
        return 1


async def read_status(redis: Redis, keys: Keys, job_id: str) -> JobStatus:
    fields, score, arq_result = await _read(redis, keys, job_id)
    state = job_state(fields, score, now_ms())
    if state is None and fields.get(Field.STATE) == JobState.QUEUED:
        # queued, yet in no queue: a worker may have claimed it between the reads (the hash
        # then says in_progress), or it expired unrun (it says queued still): read again
        fields, score, arq_result = await _read(redis, keys, job_id)
        state = job_state(fields, score, now_ms())
    if state in (JobState.QUEUED, JobState.DEFERRED) and not fields.get(Field.PIPELINE):
        # written with raw Redis commands: no status hash until a worker claims it
        fields = {**await _fields_from_envelope(redis, keys, job_id), **fields}
    if state is not None:
        return status_from_hash(job_id, fields, state)
    if arq_result is not None:
        return _from_arq_result(job_id, fields, arq_result)
    if fields:
        # our hash exists but arq has no trace of the job: it expired before a worker took it
        fields[Field.ERROR] = fields.get(Field.ERROR) or "job expired before a worker ran it"
        return status_from_hash(job_id, fields, JobState.FAILED)
    return JobStatus(job_id=job_id, state=JobState.NOT_FOUND)


async def _read(
    redis: Redis, keys: Keys, job_id: str
) -> tuple[dict[str, str], float | None, bytes | None]:
    """The status hash, the score in the job's queue (None: in none), arq's result."""
    keys = keys.for_job(job_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.job(job_id))
        pipe.zscore(keys.queue, job_id)
        pipe.get(keys.arq_result(job_id))
        raw, score, arq_result = await pipe.execute()
    fields = _decode(raw)
    if score is None and (queue := named_queue(fields)) is not None:
        score = await redis.zscore(keys.named_queue(queue), job_id)
    return fields, score, arq_result


async def _fields_from_envelope(redis: Redis, keys: Keys, job_id: str) -> dict[str, str]:
    """Pipeline, total and enqueue time of a job written with raw Redis commands."""
    raw = await redis.get(keys.arq_job(job_id))
    if not raw:
        return {}
    envelope = load_envelope(raw)
    kwargs: dict[str, Any] = envelope["k"]
    if MALFORMED in kwargs:  # the worker will mark it failed with the reason
        return {}
    fields = {Field.PIPELINE.value: str(kwargs.get("pipeline", ""))}
    if isinstance(kwargs.get("inputs"), list):
        fields[Field.TOTAL] = str(len(kwargs["inputs"]))
    if envelope["et"] > 0:
        fields[Field.ENQUEUED_AT] = str(envelope["et"] / 1000)
    return fields


def _from_arq_result(job_id: str, fields: dict[str, str], raw: bytes) -> JobStatus:
    """arq finished the job without Sluice recording it (e.g. its tries ran out)."""
    try:
        result = loads(raw)
        ok = bool(result.get("s"))
        detail = result.get("r")
    except (ValueError, AttributeError):
        ok, detail = False, "unreadable arq result"
    if not ok:
        if isinstance(detail, dict):
            detail = f"{detail.get('error', 'error')}: {detail.get('message', '')}"
        fields[Field.ERROR] = fields.get(Field.ERROR) or str(detail)
    return status_from_hash(job_id, fields, JobState.COMPLETE if ok else JobState.FAILED)
