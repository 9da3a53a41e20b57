"""The workloads' HTTP server, in its own process so it never shares the measured loop.

``python -m benchmarks.http_server --port P [--text-docs N]`` answers
``GET /{latency_ms}/{kind}/{index}`` with ``workloads.payload(kind, index)`` after sleeping
``latency_ms``. ``HttpServer`` starts and stops it from the harness.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmarks.workloads import payload
from tests.support.processes import terminate
from tests.support.servers import free_port

# a request's line and headers end with an empty line; the path names the response
HEAD_END = b"\r\n\r\n"
PATH = re.compile(rb"GET /(\d+)/(\w+)/(\d+) HTTP/1\.[01]\r\n")
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 14\r\n\r\nno such input\n"


@functools.lru_cache(maxsize=8192)
def response(kind: bytes, index: int) -> bytes:
    """The whole HTTP response for one input, built once."""
    try:
        body = payload(kind.decode(), index)
    except ValueError:
        return NOT_FOUND
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


class Connection(asyncio.Protocol):
    """One keep-alive connection: each GET is answered after its latency, in order.

    A few lines of protocol instead of a web framework, so the load generator costs as
    little CPU as it can on the cores the systems under test share with it.
    """

    def __init__(self) -> None:
        self.buffer = b""
        self.pending: collections.deque[list[bytes | None]] = collections.deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        loop = asyncio.get_running_loop()
        while (end := self.buffer.find(HEAD_END)) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            match = PATH.match(head + b"\r\n")
            slot: list[bytes | None] = [None]
            self.pending.append(slot)
            if match is None:
                self._ready(slot, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                continue
            answer = response(match[2], int(match[3]))
            latency_ms = int(match[1])
            if latency_ms:
                loop.call_later(latency_ms / 1000, self._ready, slot, answer)
            else:
                self._ready(slot, answer)

    def _ready(self, slot: list[bytes | None], answer: bytes) -> None:
        slot[0] = answer
        while self.pending and self.pending[0][0] is not None:
            ready = self.pending.popleft()[0]
            if self.transport is not None and ready is not None:
                self.transport.write(ready)


def serve(port: int, text_docs: int) -> None:
    for index in range(text_docs):  # build the responses before the clock starts
        response(b"text", index)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a worker dependency
        pass

    async def run() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Connection, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(run())


class HttpServer:
    """The server subprocess: ``start`` waits until it answers; ``stop`` ends it."""

    def __init__(self, log_path: Path, text_docs: int) -> None:
        self.port = free_port()
        self.log_path, self.text_docs = log_path, text_docs
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> HttpServer:
        args = [
            sys.executable,
            "-m",
            "benchmarks.http_server",
            "--port",
            str(self.port),
            "--text-docs",
            str(self.text_docs),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/0/small/0", timeout=1) as response:
                    response.read()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"HTTP server did not start; see {self.log_path}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        terminate(self.process)
        self.process = None


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the benchmark's inputs over HTTP.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--text-docs", type=int, default=0, help="documents to pre-generate")
    args = parser.parse_args()
    serve(args.port, args.text_docs)


if __name__ == "__main__":
    main()
