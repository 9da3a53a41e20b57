"""Errors as HTTP answers: a JSON body ``{"error": code, "message": ...}`` for the API, a page
for the dashboard. Sluice's own errors map to the status a client can act on; any other
exception is a 500 of the same shape (``internal_error``), logged here with its traceback,
so no API answer is ever plain text."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from redis.exceptions import RedisError

from producer.contract.errors import (
    InvalidJob,
    JobExists,
    JobNotFound,
    QueueFull,
    ServerUnavailable,
    SluiceError,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger("sluice.dashboard")
RETRY_AFTER_S = 5  # what a 503 suggests a client waits before trying again
PAYLOAD_LIMIT = web.AppKey("payload_limit", int)  # SLUICE_MAX_PAYLOAD_BYTES, for a 413's message

# most specific first: the first isinstance match wins
STATUS: list[tuple[type[SluiceError], int, str]] = [
    (InvalidJob, 422, "invalid_job"),
    (JobExists, 409, "job_exists"),
    (JobNotFound, 404, "not_found"),
    (QueueFull, 503, "queue_full"),
    (ServerUnavailable, 503, "server_unavailable"),
    (SluiceError, 409, "conflict"),  # e.g. retrying a job that did not fail
]


def json_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


def describe(exc: SluiceError) -> tuple[int, str]:
    """The HTTP status and error code for one of Sluice's errors."""
    for cls, status, code in STATUS:
        if isinstance(exc, cls):
            return status, code
    raise AssertionError("SluiceError is the last entry")  # pragma: no cover


def is_api(request: web.Request) -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn Sluice and Redis errors, and the API's HTTP errors, into clear answers."""
    try:
        return await handler(request)
    except SluiceError as exc:
        status, code = describe(exc)
        retry = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
        if is_api(request):
            return json_error(status, code, str(exc), retry)
        return web.Response(status=status, text=f"{code}: {exc}", headers=retry)
    except RedisError as exc:
        if is_api(request):
            return json_error(503, "redis_error", f"redis: {exc}")
        return web.Response(status=503, text=f"redis_error: {exc}")
    except web.HTTPException as exc:
        if not is_api(request) or exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        kept = {k: exc.headers[k] for k in ("Allow", "WWW-Authenticate") if k in exc.headers}
        message = exc.text or exc.reason
        if isinstance(exc, web.HTTPRequestEntityTooLarge):  # aiohttp's says only the bytes
            limit = request.app[PAYLOAD_LIMIT]
            message = (
                f"the request body is over the limit: a job of at most {limit} bytes "
                "(SLUICE_MAX_PAYLOAD_BYTES) and the JSON around it"
            )
        return json_error(exc.status, code, message, kept)
    except Exception as exc:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        message = f"unexpected {type(exc).__name__}; the dashboard's log has the details"
        if is_api(request):
            return json_error(500, "internal_error", message)
        return web.Response(status=500, text=f"internal_error: {message}")
