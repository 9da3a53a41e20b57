"""A real local HTTP server that receives webhooks and checks their signatures, as a
receiver would (docs/webhooks.md's snippet, in test form)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiohttp import web

from tests.support.http_server import HttpServer

HANG = 0  # an answer that never comes


class Reply(NamedTuple):
    """An answer given after ``hold_s``, with these headers (e.g. Retry-After; a value may
    be a function, called as the answer goes)."""

    status: int
    hold_s: float = 0.0
    headers: tuple[tuple[str, str | Callable[[], str]], ...] = ()


@dataclass
class Received:
    """One POST: its path, JSON body, headers, and whether its signature verified."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    signed: bool
    at: float = 0.0  # when it came (time.monotonic())


@dataclass
class WebhookReceiver(HttpServer):
    """Answers each POST to ``/{path}`` with the next status or `Reply` of ``answers[path]``
    (then 200; `HANG`: no answer at all), and keeps every POST in ``received``; started and
    stopped as `HttpServer` is."""

    secret: str = ""
    answers: dict[str, list[int | Reply]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _hanging: set[asyncio.Task[object]] = field(default_factory=set)

    def verified(self, raw: bytes, headers: dict[str, str]) -> bool:
        signed = headers.get("X-Sluice-Timestamp", "").encode() + b"." + raw
        expected = hmac.new(self.secret.encode(), signed, hashlib.sha256).hexdigest()
        return hmac.compare_digest(f"sha256={expected}", headers.get("X-Sluice-Signature", ""))

    def to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    async def _receive(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = dict(request.headers)
        path, at = request.match_info["path"], time.monotonic()
        with self._lock:
            self.received.append(
                Received(path, json.loads(raw), headers, self.verified(raw, headers), at)
            )
            queued = self.answers.get(path, [])
            answer = queued.pop(0) if queued else 200
        reply = answer if isinstance(answer, Reply) else Reply(answer)
        status = reply.status
        if reply.hold_s:
            await asyncio.sleep(reply.hold_s)
        if status == HANG:  # until the sender gives up or dies, or the server stops
            hanging = asyncio.current_task()
            assert hanging is not None
            self._hanging.add(hanging)
            await asyncio.sleep(3600)
        text = "ok" if status < 300 else "no"
        headers = {k: v if isinstance(v, str) else v() for k, v in reply.headers}
        return web.Response(status=status, text=text, headers=headers)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/{path:.*}", self._receive)

    def stop(self) -> None:
        if self._loop is not None:  # a held answer would hold the server's cleanup too
            hanging = list(self._hanging)
            self._loop.call_soon_threadsafe(lambda: [task.cancel() for task in hanging])
        super().stop()
