"""The workloads' HTTP server, in its own process so it never shares the measured loop.

``python -m tests.bench.http_server --port P [--text-docs N]`` answers
``GET /{latency_ms}/{kind}/{index}`` with ``workloads.payload(kind, index)`` after sleeping
``latency_ms``. ``HttpServer`` starts and stops it from the harness.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from aiohttp import web

from tests.bench.workloads import payload, text_document
from tests.support.processes import terminate
from tests.support.servers import free_port


async def handle(request: web.Request) -> web.Response:
    latency_ms = int(request.match_info["latency_ms"])
    try:
        body = payload(request.match_info["kind"], int(request.match_info["index"]))
    except ValueError:
        return web.Response(status=404, text="no such input")
    if latency_ms:
        await asyncio.sleep(latency_ms / 1000)
    return web.Response(body=body)


def serve(port: int, text_docs: int) -> None:
    for index in range(text_docs):  # generate the corpus before the clock starts
        text_document(index)
    app = web.Application()
    app.router.add_get("/{latency_ms:\\d+}/{kind}/{index:\\d+}", handle)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a worker dependency
        pass
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=1024)


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
        args = [sys.executable, "-m", "tests.bench.http_server", "--port", str(self.port),
                "--text-docs", str(self.text_docs)]  # fmt: skip
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
