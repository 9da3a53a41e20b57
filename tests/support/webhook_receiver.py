"""A real local HTTP server that receives webhooks and checks their signatures, as a
receiver would (docs/webhooks.md's snippet, in test form)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.servers import free_port


@dataclass
class Received:
    """One POST: its path, JSON body, headers, and whether its signature verified."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    signed: bool


@dataclass
class WebhookReceiver:
    """Answers each POST to ``/{path}`` with the next status of ``answers[path]`` (then 200),
    and keeps every POST in ``received``."""

    secret: str
    answers: dict[str, list[int]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def verified(self, raw: bytes, headers: dict[str, str]) -> bool:
        signed = headers.get("X-Sluice-Timestamp", "").encode() + b"." + raw
        expected = hmac.new(self.secret.encode(), signed, hashlib.sha256).hexdigest()
        return hmac.compare_digest(f"sha256={expected}", headers.get("X-Sluice-Signature", ""))

    def to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = dict(request.headers)
        path = request.match_info["path"]
        with self._lock:
            self.received.append(
                Received(path, json.loads(raw), headers, self.verified(raw, headers))
            )
            queued = self.answers.get(path, [])
            status = queued.pop(0) if queued else 200
        return web.Response(status=status, text="ok" if status < 300 else "no")

    def start(self) -> WebhookReceiver:
        ready = threading.Event()

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/{path:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
            ready.set()

        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="test-webhooks")
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)
        self._loop.close()
        self._loop = None
