"""Reading a job's state: Sluice's status hash first, arq's keys where it says nothing."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from producer.keys import Keys
from producer.models import JobState, JobStatus
from producer.wire import loads, now_ms, status_from_hash


def _decode(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode("utf-8", "replace") for k, v in raw.items()}


async def read_status(redis: Redis, keys: Keys, job_id: str) -> JobStatus:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.job(job_id))
        pipe.zscore(keys.queue, job_id)
        pipe.exists(keys.arq_in_progress(job_id))
        pipe.get(keys.arq_result(job_id))
        raw, score, running, arq_result = await pipe.execute()
    fields = _decode(raw)
    state = fields.get("state")
    if state in (JobState.COMPLETE, JobState.FAILED, JobState.CANCELLED):
        return status_from_hash(job_id, fields)
    if running:
        return status_from_hash(job_id, fields, JobState.IN_PROGRESS)
    if score is not None:
        queued = JobState.DEFERRED if score > now_ms() else JobState.QUEUED
        if not fields:
            fields = await _fields_from_envelope(redis, keys, job_id)
        return status_from_hash(job_id, fields, queued)
    if arq_result is not None:
        return _from_arq_result(job_id, fields, arq_result)
    if fields:
        # our hash exists but arq has no trace of the job: it expired before a worker took it
        fields["error"] = fields.get("error") or "job expired before a worker ran it"
        return status_from_hash(job_id, fields, JobState.FAILED)
    return JobStatus(job_id=job_id, state=JobState.NOT_FOUND)


async def _fields_from_envelope(redis: Redis, keys: Keys, job_id: str) -> dict[str, str]:
    """Pipeline and total of a job written with raw Redis commands (no status hash yet)."""
    raw = await redis.get(keys.arq_job(job_id))
    fields: dict[str, str] = {}
    try:
        kwargs: dict[str, Any] = loads(raw)["k"] if raw else {}
        fields["pipeline"] = str(kwargs.get("pipeline", ""))
        if isinstance(kwargs.get("inputs"), list):
            fields["total"] = str(len(kwargs["inputs"]))
    except (ValueError, TypeError, KeyError):
        pass  # malformed: the worker will mark it failed with the reason
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
        fields["error"] = fields.get("error") or str(detail)
    return status_from_hash(job_id, fields, JobState.COMPLETE if ok else JobState.FAILED)
