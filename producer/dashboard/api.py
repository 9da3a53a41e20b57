"""The HTTP API: enqueue, status, results, cancel, retry, delete, listings, stats, workers.

Every call goes through `producer.Client`, so enqueue has exactly the client's validation and
limits. Which calls need the token is `auth`'s business; how errors look is `errors`'.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from producer.contract.callbacks import MAX_CALLBACK_URL_CHARS
from producer.contract.errors import JobNotFound
from producer.contract.models import (
    MAX_PRIORITY,
    PIPELINE_NAME_PATTERN,
    QUEUE_NAME_PATTERN,
    JobState,
)
from producer.contract.validation import JOB_ID_PATTERN, MAX_DEFER_S, describe
from producer.dashboard import context
from producer.dashboard.actions import retry_all
from producer.dashboard.errors import json_error
from producer.dashboard.job_paths import path_job_id, path_segment
from producer.dashboard.json_body import BadBody, read_json
from producer.dashboard.listing import page_of

RESULTS_DEFAULT, RESULTS_MAX = 100, 1000
JOBS_DEFAULT, JOBS_MAX = 50, 500
FAILED_DEFAULT, FAILED_MAX = 100, 1000
PAGE_MAX, START_MAX = 10**9, 10**12
routes = web.RouteTableDef()


class EnqueueRequest(BaseModel):
    """The body of ``POST /api/jobs``."""

    model_config = ConfigDict(extra="forbid")

    # the client checks these (one set of messages); the patterns only describe them
    pipeline: StrictStr = Field(json_schema_extra={"pattern": PIPELINE_NAME_PATTERN})
    """A pipeline the workers run, e.g. ``text-stats``."""
    inputs: list[StrictStr] = Field(json_schema_extra={"minItems": 1})
    """Input URIs (``https://``, ``file://``, ``data:``, or a scheme a pipeline module adds)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """The pipeline's options."""
    job_id: StrictStr | None = Field(
        default=None, json_schema_extra={"pattern": JOB_ID_PATTERN.pattern}
    )
    """Use this id (default: a random one)."""
    defer_s: float = Field(default=0.0, ge=0, le=MAX_DEFER_S, allow_inf_nan=False)
    """Do not run before this many seconds from now (at most a year, MAX_DEFER_S)."""
    queue: StrictStr | None = Field(default=None, json_schema_extra={"pattern": QUEUE_NAME_PATTERN})
    """The queue it waits in (default ``default``): only workers that serve it take it."""
    priority: StrictInt = Field(default=0, ge=0, le=MAX_PRIORITY)
    """0-9: ahead of lower-priority jobs that became due up to this many minutes before it."""
    timeout_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    """This job's timeout (default: the worker's SLUICE_JOB_TIMEOUT_S)."""
    max_tries: StrictInt | None = Field(default=None, ge=1)
    """This job's tries per unit (default: the worker's SLUICE_MAX_TRIES)."""
    result_ttl_s: StrictInt | None = Field(default=None, ge=1)
    """How long its results are kept (default: the worker's SLUICE_RESULT_TTL_S)."""
    callback_url: StrictStr | None = Field(
        default=None,
        json_schema_extra={"format": "uri", "maxLength": MAX_CALLBACK_URL_CHARS},
    )
    """POSTed, signed, when the job ends: http(s), no credentials (default: the namespace's
    SLUICE_WEBHOOK_URL, if any; docs/webhooks.md)."""


def int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise web.HTTPBadRequest(text=f"{name} must be between {low} and {high}, got {value}")
    return value


@routes.post("/api/jobs")
async def enqueue(request: web.Request) -> web.Response:
    try:
        body = await read_json(request)
    except BadBody as exc:
        return json_error(400, "bad_json", str(exc))
    try:
        job = EnqueueRequest.model_validate(body)
    except ValidationError as exc:
        return json_error(422, "invalid_job", describe(exc))
    job_id = await context.client(request).enqueue(
        job.pipeline,
        job.inputs,
        options=job.options,
        job_id=job.job_id,
        defer_s=job.defer_s,
        queue=job.queue,
        priority=job.priority,
        timeout_s=job.timeout_s,
        max_tries=job.max_tries,
        result_ttl_s=job.result_ttl_s,
        callback_url=job.callback_url,
    )
    context.listing(request).invalidate()
    location = f"/api/jobs/{path_segment(job_id)}"
    return web.json_response(
        {"job_id": job_id, "status_url": location}, status=201, headers={"Location": location}
    )


@routes.get("/api/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    state = request.query.get("state") or None
    if state is not None and state not in {s.value for s in JobState}:
        raise web.HTTPBadRequest(text=f"unknown state {state!r}")
    snapshot = await context.listing(request).snapshot()
    matched = snapshot.select(
        state=state,
        pipeline=request.query.get("pipeline"),
        search=request.query.get("q"),
        queue=request.query.get("queue"),
    )
    per_page = int_query(request, "per_page", JOBS_DEFAULT, 1, JOBS_MAX)
    rows, pages = page_of(matched, int_query(request, "page", 1, 1, PAGE_MAX), per_page)
    return web.json_response(
        {
            "jobs": [job.as_dict() for job in rows],
            "matched": len(matched),
            "pages": pages,
            "per_page": per_page,
            "truncated": snapshot.truncated,
        }
    )


@routes.get("/api/jobs/{job_id}")
async def job_status(request: web.Request) -> web.Response:
    job_id = path_job_id(request)
    status = await context.client(request).status(job_id)
    if status.state == JobState.NOT_FOUND:
        raise JobNotFound(f"no job {job_id}")
    return web.json_response(status.as_dict())


@routes.get("/api/jobs/{job_id}/results")
async def job_results(request: web.Request) -> web.Response:
    job_id, client = path_job_id(request), context.client(request)
    start = int_query(request, "start", 0, 0, START_MAX)
    limit = int_query(request, "limit", RESULTS_DEFAULT, 1, RESULTS_MAX)
    status = await client.status(job_id)
    if status.state == JobState.NOT_FOUND:
        raise JobNotFound(f"no job {job_id}")
    records = [r.as_line() async for r in client.results(job_id, start=start, limit=limit)]
    following = start + limit if start + limit < status.total else None
    return web.json_response(
        {
            "job_id": job_id,
            "total": status.total,
            "start": start,
            "limit": limit,
            "records": records,
            "next_start": following,
        }
    )


@routes.post("/api/jobs/{job_id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    job_id, client = path_job_id(request), context.client(request)
    context.listing(request).invalidate()
    if await client.cancel(job_id):
        return web.json_response({"job_id": job_id, "state": JobState.CANCELLED.value})
    state = (await client.status(job_id)).state
    return json_error(409, "already_ended", f"job {job_id} already ended ({state})")


@routes.post("/api/jobs/{job_id}/retry")
async def retry(request: web.Request) -> web.Response:
    job_id = path_job_id(request)
    failed_inputs = bool(int_query(request, "failed_inputs", 0, 0, 1))
    context.listing(request).invalidate()
    again = await context.client(request).retry(job_id, failed_inputs=failed_inputs)
    answer: dict[str, object] = {"job_id": job_id, "state": JobState.QUEUED.value}
    if again is not None:
        answer["inputs"] = again
    return web.json_response(answer)


@routes.delete("/api/jobs/{job_id}")
async def delete(request: web.Request) -> web.Response:
    job_id = path_job_id(request)
    context.listing(request).invalidate()
    await context.client(request).delete(job_id)
    return web.json_response({"job_id": job_id, "deleted": True})


@routes.get("/api/failed")
async def failed(request: web.Request) -> web.Response:
    limit = int_query(request, "limit", FAILED_DEFAULT, 1, FAILED_MAX)
    jobs = await context.client(request).failed(limit=limit)
    return web.json_response([job.as_dict() for job in jobs])


@routes.post("/api/failed/retry")
async def failed_retry(request: web.Request) -> web.Response:
    context.listing(request).invalidate()
    return web.json_response((await retry_all(context.client(request))).as_dict())


@routes.get("/api/stats")
async def stats(request: web.Request) -> web.Response:
    return web.json_response((await context.client(request).stats()).as_dict())


@routes.get("/api/workers")
async def workers(request: web.Request) -> web.Response:
    live = await context.client(request).workers()
    return web.json_response([worker.as_dict() for worker in live])


@routes.get("/api/pipelines")
async def pipelines(request: web.Request) -> web.Response:
    return web.json_response(await context.client(request).pipelines())
