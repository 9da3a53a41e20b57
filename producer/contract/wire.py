"""The JSON wire format: arq's job envelope, Sluice's status hash, and the JSON codec.

No pickle anywhere: arq is given `dumps`/`loads` below as its job serializer, so a job
written by any language with plain Redis commands is read the same way.

The job envelope at ``arq:job:{id}`` (arq's own field names)::

    {"t": 1, "f": "sluice", "a": [], "k": {"pipeline": "text-stats",
     "inputs": ["https://example.com/a.txt"], "options": {}}, "et": 1700000000000}
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from producer.contract.errors import problems
from producer.contract.keys import DEFAULT_QUEUE, JOB_FUNCTION
from producer.contract.models import (
    MAX_PRIORITY,
    QUEUE_NAME_PATTERN,
    STAGES,
    ItemResult,
    JobSpec,
    JobState,
    JobStatus,
    StageTiming,
    WebhookState,
    WebhookStatus,
)
from producer.contract.status import Field, stage_field


def _default(obj: object) -> Any:
    # arq stores exceptions as job results; keep their type and message, never the object
    if isinstance(obj, BaseException):
        return {"error": type(obj).__name__, "message": str(obj)}
    if isinstance(obj, bytes | bytearray):
        return obj.decode("utf-8", "replace")
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def dumps(obj: Any) -> bytes:
    """Encode as compact JSON (also arq's job serializer)."""
    return orjson.dumps(obj, default=_default)


def loads(data: bytes | str) -> Any:
    """Decode JSON (also arq's job deserializer)."""
    return orjson.loads(data)


def now_ms() -> int:
    return int(time.time() * 1000)


def encode_job(spec: JobSpec, enqueue_ms: int) -> bytes:
    """The arq envelope for a Sluice job, as stored at ``arq:job:{id}``."""
    kwargs = spec.model_dump(exclude_none=True)
    for name in _DEFAULTS_LEFT_OUT:  # the usual job's envelope stays as short as it was
        if kwargs.get(name) == JobSpec.model_fields[name].default:
            del kwargs[name]
    return dumps({"t": 1, "f": JOB_FUNCTION, "a": [], "k": kwargs, "et": enqueue_ms})


_DEFAULTS_LEFT_OUT = ("queue", "priority")


def read_number(raw: str | bytes | None, kind: type[int] | type[float] = int) -> Any:
    """A number read from Redis. Anyone may write there: what is not a finite number reads
    as none (0 for a count), so one bad field never stops a reader."""
    empty = None if kind is float else 0
    try:
        value = float(raw or "")
    except ValueError:
        return empty
    if not math.isfinite(value):
        return empty
    return int(value) if kind is int else value


def read_record(index: int, raw: bytes | str) -> ItemResult:
    """The record stored for input ``index``. Anyone may write there: one that is not a
    record (not UTF-8, not JSON, not a record's shape) reads as a failed record saying so, so
    one bad field never stops a reader from listing the others."""
    try:
        return ItemResult.model_validate(loads(raw))
    except ValidationError as exc:
        first = problems(exc, "record")[0]
        reason = f"{first.where}: {first.what}"
    except ValueError as exc:  # orjson's JSONDecodeError: not UTF-8, or not JSON
        reason = f"not JSON: {exc}"
    error = f"the stored record of input {index} cannot be read: {reason}"
    return ItemResult(index=index, input="", ok=False, error=error)


def _num(fields: Mapping[str, str], name: str, kind: type[int] | type[float] = int) -> Any:
    """A number of the status hash; unset, or not a number (written by another tool), is 0
    for a count and None for a time."""
    return read_number(fields.get(name), kind)


def _state(fields: Mapping[str, str]) -> JobState:
    """The hash's own state; one it does not know reads as queued, as a missing one does
    (readers pass the state they found in arq's keys unless the hash's is final)."""
    try:
        return JobState(fields.get(Field.STATE) or JobState.QUEUED)
    except ValueError:
        return JobState.QUEUED


def status_from_hash(
    job_id: str, fields: Mapping[str, str], state: JobState | None = None
) -> JobStatus:
    """Build a `JobStatus` from the status hash ``{ns}:job:{id}`` (decoded to str); whatever
    the hash holds, never an error."""
    stages = {
        stage: StageTiming(
            count=_num(fields, stage_field(stage, "_count")),
            total_s=_num(fields, stage_field(stage, "_s"), float) or 0.0,
            slot_s=_num(fields, stage_field(stage, "_slot_s"), float) or 0.0,
        )
        for stage in STAGES
    }
    return JobStatus(
        job_id=job_id,
        state=state or _state(fields),
        pipeline=fields.get(Field.PIPELINE) or None,
        total=_num(fields, Field.TOTAL),
        fetched=_num(fields, Field.FETCHED),
        transformed=_num(fields, Field.TRANSFORMED),
        stored=_num(fields, Field.STORED),
        failed=_num(fields, Field.FAILED),
        error=fields.get(Field.ERROR) or None,
        attempts=_num(fields, Field.ATTEMPTS),
        worker=fields.get(Field.WORKER) or None,
        enqueued_at=_num(fields, Field.ENQUEUED_AT, float),
        started_at=_num(fields, Field.STARTED_AT, float),
        finished_at=_num(fields, Field.FINISHED_AT, float),
        queue=queue_name(fields.get(Field.QUEUE)),
        priority=min(max(_num(fields, Field.PRIORITY), 0), MAX_PRIORITY),
        timeout_s=_num(fields, Field.TIMEOUT_S, float),
        max_tries=_num(fields, Field.MAX_TRIES) or None,
        result_ttl_s=_num(fields, Field.RESULT_TTL_S) or None,
        schedule=fields.get(Field.SCHEDULE) or None,
        stages=stages,
        rate_wait_count=_num(fields, Field.RATE_WAIT_COUNT),
        rate_wait_s=_num(fields, Field.RATE_WAIT_S, float) or 0.0,
        webhook=_webhook(fields),
    )


def _webhook(fields: Mapping[str, str]) -> WebhookStatus | None:
    """The webhook part of a status: None when the job has no callback URL and no delivery
    was queued; a state the hash holds that is not a WebhookState reads as none."""
    url, raw = fields.get(Field.CALLBACK_URL) or None, fields.get(Field.WEBHOOK_STATE)
    state = WebhookState(raw) if raw in {s.value for s in WebhookState} else None
    if url is None and state is None:
        return None
    return WebhookStatus(
        url=url,
        state=state,
        attempts=_num(fields, Field.WEBHOOK_ATTEMPTS),
        error=fields.get(Field.WEBHOOK_ERROR) or None,
        at=_num(fields, Field.WEBHOOK_AT, float),
    )


def queue_name(raw: str | None) -> str:
    """The job's queue as the hash says; a name that breaks the grammar (written by another
    tool) reads as the default queue, where such a job was found."""
    return raw if raw and re.fullmatch(QUEUE_NAME_PATTERN, raw) else DEFAULT_QUEUE
