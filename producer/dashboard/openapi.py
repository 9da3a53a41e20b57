"""The HTTP API's OpenAPI 3.1 description, served at ``/api/openapi.json``.

Reads are marked as open or bearer-authenticated (``{}`` allows anonymous: the token is needed
only with SLUICE_DASHBOARD_REQUIRE_LOGIN); every write needs the bearer token.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from producer.contract.events import Event, EventType
from producer.contract.models import (
    MAX_PRIORITY,
    JobState,
    QueueFigures,
    QueueStats,
    WebhookState,
    WebhookStatus,
    WorkerInfo,
)
from producer.contract.schedule_info import ScheduleInfo
from producer.contract.validation import JOB_ID_PATTERN
from producer.dashboard import api
from producer.dashboard.api import EnqueueRequest

REF = "#/components/schemas/{model}"
READ: list[dict[str, list[str]]] = [{}, {"bearer": []}]
WRITE: list[dict[str, list[str]]] = [{"bearer": []}]
NUM, INT, STR = {"type": "number"}, {"type": "integer"}, {"type": "string"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required or list(props)}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    says = {
        400: "Bad request (malformed JSON or query)",
        401: "The token is missing or wrong",
        403: "Read-only mode, or no token set",
        404: "No such job",
        409: "The job's state does not allow this",
        413: "Body over SLUICE_MAX_PAYLOAD_BYTES",
        421: "The Host is not one this dashboard answers to (SLUICE_DASHBOARD_ALLOWED_HOSTS)",
        422: "The job, or the job id in the path, is invalid; nothing was done",
        429: "Too many wrong tokens from this address lately; see Retry-After",
        503: "Queue full (SLUICE_MAX_QUEUED_JOBS) or Redis unreachable; see Retry-After",
    }
    described = {str(code): _json(_ref("Error"), says[code]) for code in codes}
    return {**described, "default": _json(_ref("Error"), "Any other error, e.g. 500")}


def _op(
    summary: str,
    security: list[dict[str, list[str]]],
    ok: dict[str, Any],
    *,
    errors: tuple[int, ...] = (),
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    ok_code: int = 200,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "security": security,
        "responses": {str(ok_code): ok, **_errors(*sorted({401, 421, 429, *errors}))},
    }
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _int(low: int, high: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high}


# the id grammar; "." and ".." are no path segment, whatever a grammar allows
JOB_ID_SCHEMA = {"type": "string", "pattern": JOB_ID_PATTERN.pattern, "not": {"enum": [".", ".."]}}
JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": JOB_ID_SCHEMA}
INDEX = {"name": "index", "in": "path", "required": True, "schema": _int(0, 10**9)}


def _schemas() -> dict[str, Any]:
    stage = _obj({"count": INT, "total_s": NUM, "mean_s": NUM})
    status = _obj(
        {
            "job_id": STR,
            "state": {"enum": [s.value for s in JobState]},
            "pipeline": _nullable(STR),
            "total": INT,
            "fetched": INT,
            "transformed": INT,
            "stored": INT,
            "failed": INT,
            "error": _nullable(STR),
            "attempts": INT,
            "worker": _nullable(STR),
            "queue": STR,
            "priority": _int(0, MAX_PRIORITY),
            "timeout_s": _nullable(NUM),
            "max_tries": _nullable(INT),
            "result_ttl_s": _nullable(INT),
            "schedule": _nullable(STR),
            "enqueued_at": _nullable(NUM),
            "started_at": _nullable(NUM),
            "finished_at": _nullable(NUM),
            "stages": {"type": "object", "additionalProperties": _ref("StageTiming")},
            "rate_wait_count": INT,
            "rate_wait_s": NUM,
            "webhook": _nullable(_ref("WebhookStatus")),
            "elapsed_s": _nullable(NUM),
            "bottleneck": {
                **_nullable(STR),
                "description": "a stage, or rate_limit: fetches waiting for rate limits' "
                "slots weighed most",
            },
        }
    )
    record = _obj(
        {
            "index": INT,
            "input": STR,
            "ok": {"type": "boolean"},
            "result": {"type": "object"},
            "error": STR,
            "blob": STR,
            "timings": {"type": "object"},
        },
        ["index", "input", "ok", "timings"],
    )
    schedule = ScheduleInfo.model_json_schema(ref_template=REF, mode="serialization")
    return {
        "Error": _obj({"error": STR, "message": STR}),
        "EnqueueRequest": EnqueueRequest.model_json_schema(ref_template=REF),
        "StageTiming": stage,
        "WebhookStatus": _without_defs(WebhookStatus.model_json_schema(ref_template=REF)),
        "WebhookState": {"type": "string", "enum": [s.value for s in WebhookState]},
        "JobStatus": status,
        "ItemRecord": record,
        "QueueStats": _without_defs(QueueStats.model_json_schema(ref_template=REF)),
        "QueueFigures": QueueFigures.model_json_schema(ref_template=REF),
        "WorkerInfo": WorkerInfo.model_json_schema(ref_template=REF),
        "ScheduleInfo": _without_defs(schedule),
        **schedule.get("$defs", {}),
        "Event": _without_defs(Event.model_json_schema(ref_template=REF)),
        "EventType": {"type": "string", "enum": [t.value for t in EventType]},
    }


def _without_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's schema without the models it nests: those are components of their own."""
    return {name: part for name, part in schema.items() if name != "$defs"}


def _paths() -> dict[str, Any]:
    return {**_job_paths(), **_other_paths()}


# The errors an action on one job may end in: no token (or read-only), no such job, a state
# that does not allow it, an id outside the grammar.
ON_JOB = (403, 404, 409, 422)


def _job_paths() -> dict[str, Any]:
    """/api/jobs and what is under it."""
    status = _json(_ref("JobStatus"), "The job's status")
    record_page = {
        "job_id": STR,
        "total": INT,
        "start": INT,
        "limit": INT,
        "records": {"type": "array", "items": _ref("ItemRecord")},
        "next_start": _nullable(INT),
    }
    results = _json(
        _obj(record_page), "Stored records from `start`, in input order (unstored inputs skipped)"
    )
    job_page = {
        "jobs": {"type": "array", "items": _ref("JobStatus")},
        "matched": INT,
        "pages": INT,
        "per_page": INT,
        "truncated": {"type": "boolean"},
    }
    listing = _json(_obj(job_page), "One page of jobs, newest first")
    enqueued = _json(_obj({"job_id": STR, "status_url": STR}), "Enqueued")
    deleted = _json(_obj({"job_id": STR, "deleted": {"type": "boolean"}}), "Deleted")
    changed = _json(_obj({"job_id": STR, "state": STR}), "The job's new state")
    states = {"enum": ["", *[s.value for s in JobState]]}
    filters = [
        _query("state", states, "Only this state (empty: any)"),
        _query("pipeline", STR, "Only this pipeline"),
        _query("queue", STR, "Only jobs of this queue"),
        _query("q", STR, "Job id contains this (any case)"),
        _query("page", _int(1, api.PAGE_MAX), "Page, from 1"),
        _query("per_page", _int(1, api.JOBS_MAX), f"1-{api.JOBS_MAX}"),
    ]
    per_page = f"Records per page, 1-{api.RESULTS_MAX} (default {api.RESULTS_DEFAULT})"
    paging = [
        _query("start", _int(0, api.START_MAX), "First input index (default 0)"),
        _query("limit", _int(1, api.RESULTS_MAX), per_page),
    ]
    blob = {
        "description": "The bytes: an image inline with its type, anything else (or with "
        "download=1) as an application/octet-stream attachment",
        "content": {"application/octet-stream": {}, "image/*": {}},
    }
    download = _query("download", _int(0, 1), "1: as a download")
    return {
        "/api/jobs": {
            "post": _op(
                "Enqueue a job",
                WRITE,
                enqueued,
                errors=(400, 403, 409, 413, 422, 503),
                body=_ref("EnqueueRequest"),
                ok_code=201,
            ),
            "get": _op(
                "List jobs (filter by state, pipeline, id)",
                READ,
                listing,
                errors=(400,),
                params=filters,
            ),
        },
        "/api/jobs/{job_id}": {
            "get": _op("A job's status", READ, status, errors=(404, 422), params=[JOB_ID]),
            "delete": _op(
                "Delete an ended job and its records",
                WRITE,
                deleted,
                errors=ON_JOB,
                params=[JOB_ID],
            ),
        },
        "/api/jobs/{job_id}/results": {
            "get": _op(
                "A job's records, paged",
                READ,
                results,
                errors=(400, 404, 422),
                params=[JOB_ID, *paging],
            ),
        },
        "/api/jobs/{job_id}/results/{index}/blob": {
            "get": _op(
                "One input's binary output (e.g. a thumbnail)",
                READ,
                blob,
                errors=(400, 404, 422),
                params=[JOB_ID, INDEX, download],
            ),
        },
        "/api/jobs/{job_id}/cancel": {
            "post": _op(
                "Cancel a queued or running job",
                WRITE,
                changed,
                errors=ON_JOB,
                params=[JOB_ID],
            ),
        },
        "/api/jobs/{job_id}/retry": {
            "post": _op(
                "Re-queue a failed or cancelled job; with failed_inputs=1, run a complete "
                "job again for its failed inputs only",
                WRITE,
                changed,
                errors=(400, *ON_JOB),
                params=[
                    JOB_ID,
                    _query(
                        "failed_inputs",
                        _int(0, 1),
                        "1: a complete job, for its failed inputs only (keeps the good records)",
                    ),
                ],
            ),
        },
    }


def _other_paths() -> dict[str, Any]:
    """The failed set, the queue, workers, pipelines, and this description."""
    statuses = _json({"type": "array", "items": _ref("JobStatus")}, "Failed jobs")
    limit = f"1-{api.FAILED_MAX} (default {api.FAILED_DEFAULT})"
    retried = {
        "retried": {"type": "array", "items": STR},
        "errors": {"type": "object", "additionalProperties": STR},
    }
    retried_all = _json(_obj(retried), "What was re-queued, and why the rest were not")
    workers = _json({"type": "array", "items": _ref("WorkerInfo")}, "Workers")
    schedules = _json({"type": "array", "items": _ref("ScheduleInfo")}, "Schedules")
    anything = {"type": "object"}
    return {
        "/api/failed": {
            "get": _op(
                "The failed set, most recent first",
                READ,
                statuses,
                errors=(400,),
                params=[_query("limit", _int(1, api.FAILED_MAX), limit)],
            ),
        },
        "/api/failed/retry": {
            "post": _op(
                "Re-queue every failed job (up to 1,000)", WRITE, retried_all, errors=(403,)
            ),
        },
        "/api/events": {"get": _events()},
        "/api/stats": {"get": _op("Queue figures", READ, _json(_ref("QueueStats"), "Stats"))},
        "/api/workers": {"get": _op("Live workers' heartbeats", READ, workers)},
        "/api/schedules": {"get": _op("Schedules workers publish", READ, schedules)},
        "/api/pipelines": {"get": _op("Registered pipelines", READ, _json(anything, "Pipelines"))},
        "/api/openapi.json": {"get": _op("This description", READ, _json(anything, "OpenAPI"))},
    }


def _events() -> dict[str, Any]:
    """``GET /api/events`` (`producer.dashboard.stream`): it never ends while followed."""
    sse = {
        "description": "Server-sent events, for ever: per event `id: <stream id>/<k>` (the "
        "entry's id and the message's position among the entry's: one entry may name several "
        "jobs) and `data: <Event as JSON>`; a comment line every 15 s while idle",
        "content": {"text/event-stream": {"schema": STR}},
    }
    types = {"type": "string", "pattern": "^[a-z,]*$"}
    params = [
        _query("job", JOB_ID_SCHEMA, "Only this job's events"),
        _query("type", types, "Only these types, comma-separated (see Event.type)"),
        _query(
            "since",
            STR,
            "After this stream id (the whole entry) or message id `<stream id>/<k>` "
            "('0': every event kept; default: new ones)",
        ),
        {
            "name": "Last-Event-ID",
            "in": "header",
            "required": False,
            "schema": STR,
            "description": "Go on after this message id, `<stream id>/<k>` (sent by a "
            "reconnecting EventSource; a plain stream id: after that whole entry)",
        },
    ]
    return _op("Job events, live", READ, sse, errors=(400,), params=params)


@cache
def spec() -> dict[str, Any]:
    """The OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sluice HTTP API",
            "version": "1",
            "description": "Enqueue and steer Sluice jobs over HTTP. Writes need "
            "`Authorization: Bearer <SLUICE_DASHBOARD_TOKEN>`; reads too when "
            "SLUICE_DASHBOARD_REQUIRE_LOGIN is set. Every error, whatever its status and "
            "cause (an unexpected one is a 500 `internal_error`), is the JSON object "
            '`{"error": code, "message": text}`: `error` a stable snake_case code to act '
            "on, `message` for people.",
        },
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
