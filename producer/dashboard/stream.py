"""``GET /api/events``: the job event stream as server-sent events, for the pages and for
any HTTP client (``curl -N``, a browser's EventSource).

Each event is one SSE message: ``id:`` its entry's stream id and its position in the entry
(`producer.dashboard.sse_ids`: a reconnecting EventSource sends it back as ``Last-Event-ID``
and goes on after it, even within an entry of several jobs), ``data:`` the event as JSON.
No ``event:`` line, so ``onmessage`` gets them all. A comment line every HEARTBEAT_S keeps
proxies from closing an idle connection and finds a reader that left. Reads are open or need
the token as every other ``GET /api/...`` (`producer.dashboard.auth`).
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from producer.client.events import NEWEST
from producer.contract.errors import SluiceError
from producer.contract.events import Event, EventType
from producer.contract.wire import dumps
from producer.dashboard import context
from producer.dashboard.render import HEADERS
from producer.dashboard.sse_ids import Resume, message_id, numbered, resume_from

HEARTBEAT_S = 15.0
RECONNECT_MS = 3000  # how long a browser waits before it reconnects (SSE ``retry:``)
CLOSING = web.AppKey("events_closing", asyncio.Event)
routes = web.RouteTableDef()


def message(event: Event, position: int) -> bytes:
    """One SSE message for ``event``, the ``position``-th of its entry's."""
    data = dumps(event.model_dump(mode="json", exclude_none=True)).decode()
    return f"id: {message_id(event, position)}\ndata: {data}\n\n".encode()


def _since(request: web.Request) -> Resume:
    chosen = request.headers.get("Last-Event-ID") or request.query.get("since") or NEWEST
    try:
        return resume_from(chosen)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


def _types(request: web.Request) -> list[str] | None:
    names = [n for raw in request.query.getall("type", []) for n in raw.split(",") if n]
    known = {t.value for t in EventType}
    for name in names:
        if name not in known:
            raise web.HTTPBadRequest(text=f"type: no event type {name!r} (known: {sorted(known)})")
    return names or None


@routes.get("/api/events")
async def events(request: web.Request) -> web.StreamResponse:
    since, types, job = _since(request), _types(request), request.query.get("job") or None
    response = web.StreamResponse(
        headers={
            **HEADERS,
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx: pass each message on at once
        }
    )
    await response.prepare(request)
    await response.write(f"retry: {RECONNECT_MS}\n\n".encode())
    events = context.client(request).events(since=since.after, job_id=job, types=types)
    stream = numbered(events, since)
    closing = request.app[CLOSING]
    ending = asyncio.ensure_future(closing.wait())
    reading = asyncio.ensure_future(anext(stream))
    try:
        while not closing.is_set():
            done, _ = await asyncio.wait(
                {reading, ending}, timeout=HEARTBEAT_S, return_when=asyncio.FIRST_COMPLETED
            )
            if reading in done:
                await response.write(message(*reading.result()))
                reading = asyncio.ensure_future(anext(stream))
            elif not done:
                await response.write(b": alive\n\n")
    except SluiceError as exc:  # Redis unreachable past the client's timeout: say so, end
        with contextlib.suppress(ConnectionError):
            await response.write(
                f"event: error\ndata: {dumps({'error': str(exc)}).decode()}\n\n".encode()
            )
    except ConnectionError:  # the reader left
        pass
    finally:
        for task in (reading, ending):
            task.cancel()
        await asyncio.gather(reading, ending, return_exceptions=True)
        await stream.aclose()
        await events.aclose()
    return response


async def close_streams(app: web.Application) -> None:
    """At shutdown, end every open stream at once (else the server waits for them)."""
    app[CLOSING].set()
