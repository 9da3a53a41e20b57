"""A real local HTTP server for fetch tests: documents, latency, errors, request counts."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

from aiohttp import web

from tests.support.servers import free_port

Handler = Callable[[web.Request], web.StreamResponse]


@dataclass
class HttpServer:
    """Serves ``documents`` (path -> bytes) with ``latency_s`` delay, in a background thread.

    ``/status/{code}`` answers with that status; ``hits`` counts completed responses per path,
    ``arrivals`` holds when each request came.
    With ``ssl_context`` it serves https, and its URLs name ``localhost`` (the name on the
    test certificates).
    """

    documents: dict[str, bytes] = field(default_factory=dict)
    latency_s: float = 0.0
    port: int = field(default_factory=free_port)
    hits: dict[str, int] = field(default_factory=dict)
    arrivals: list[float] = field(default_factory=list)  # when each request came (monotonic s)
    ssl_context: ssl.SSLContext | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        base = "https://localhost" if self.ssl_context else "http://127.0.0.1"
        return f"{base}:{self.port}/{path.lstrip('/')}"

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        self.arrivals.append(time.monotonic())
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        try:
            if path.startswith("status/"):
                return web.Response(status=int(path.split("/")[1]), text="as asked")
            body = self.documents.get(path)
            if body is None:
                return web.Response(status=404, text="not found")
            return web.Response(body=body)
        finally:
            self.hits[path] = self.hits.get(path, 0) + 1

    def add_routes(self, app: web.Application) -> None:
        """What the server answers: GET of ``documents`` (a subclass may serve other routes)."""
        app.router.add_get("/{path:.*}", self._handle)

    def start(self) -> Self:
        ready = threading.Event()

        async def serve() -> None:
            app = web.Application()
            self.add_routes(app)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.ssl_context)
            await site.start()
            ready.set()

        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="test-http")
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        runner = self._runner

        async def cleanup() -> None:
            # a TLS connection closed politely waits for the client's close_notify, which a
            # client still connected never sends once this loop stops: cut them off instead
            if runner.server is not None:
                for handler in runner.server.connections:
                    if handler.transport is not None:
                        handler.transport.abort()
            await runner.cleanup()

        asyncio.run_coroutine_threadsafe(cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)
        self._loop.close()
        self._loop = None
