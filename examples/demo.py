"""`make demo`: one text-stats job of generated documents, end to end, against a baseline.

Starts a worker (which starts the embedded server), serves a generated corpus over HTTP
with simulated latency, enqueues one job over it, shows live progress and the stage
table, then processes the same inputs sequentially and prints the speed-up. It stops
everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from rich.console import Console
from rich.table import Table

from producer import Client, ClientSettings, JobStatus
from producer.cli.events import watch
from producer.cli.render import render_status
from producer.contract.wire import dumps
from producer.redis.connection import embedded_address
from worker.pipelines.text_stats import text_stats

DOCUMENTS = 240
LATENCY_S = 0.040
DATA_DIR = Path(".sluice/demo")
WORDS = [
    "river",
    "sluice",
    "gate",
    "water",
    "flow",
    "lock",
    "canal",
    "basin",
    "weir",
    "stream",
    "current",
    "channel",
    "pool",
    "harbour",
    "dock",
    "mill",
    "wheel",
    "tide",
    "bank",
    "bridge",
    "ferry",
    "barge",
    "boat",
    "quay",
    "pier",
    "reservoir",
    "spring",
    "delta",
    "estuary",
    "marsh",
    "fen",
    "brook",
    "creek",
    "rapids",
    "cascade",
    "torrent",
    "eddy",
    "whirlpool",
    "ripple",
    "wave",
]

console = Console()


def make_corpus(count: int, seed: int = 7) -> dict[str, bytes]:
    """Documents of 30-80 KB of words, generated (never committed)."""
    rng = random.Random(seed)
    corpus = {}
    for i in range(count):
        target = rng.randint(30_000, 80_000)
        words = rng.choices(WORDS, k=target // 6)
        corpus[f"doc-{i:04d}.txt"] = " ".join(words).encode()[:target]
    return corpus


async def serve(corpus: dict[str, bytes], latency_s: float) -> tuple[web.AppRunner, int]:
    async def handle(request: web.Request) -> web.Response:
        await asyncio.sleep(latency_s)
        body = corpus.get(request.match_info["name"])
        return web.Response(body=body) if body is not None else web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{name}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, int(port)


def start_worker() -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(
        SLUICE_DATA_DIR=str(DATA_DIR),
        SLUICE_FETCH_ALLOW="127.0.0.0/8",
        SLUICE_LOG_FORMAT="json",
        SLUICE_LOG_LEVEL="warning",
    )
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with (DATA_DIR / "worker.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )


async def wait_for_worker(client: Client, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"worker exited; see {DATA_DIR / 'worker.log'}")
        if embedded_address(DATA_DIR) and (await client.stats()).workers:
            return
        await asyncio.sleep(0.1)
    raise SystemExit("worker did not start within 60 s")


async def sequential(client: Client, urls: list[str]) -> float:
    """The baseline: one input at a time, fetch → transform → store, in this process."""
    key = client.keys.results("sequential-baseline")
    start = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        for index, url in enumerate(urls):
            async with session.get(url) as response:
                data = await response.read()
            result = text_stats(data, {})
            await client.redis.hset(key, str(index), dumps(result))
    elapsed = time.perf_counter() - start
    await client.redis.delete(key)
    return elapsed


def summary(status: JobStatus, baseline_s: float) -> Table:
    elapsed = status.elapsed_s or 0.0
    table = Table(title="Sluice vs. sequential", show_edge=False)
    for column in ("", "wall time", "throughput", "speed-up"):
        table.add_column(column, justify="right")
    table.add_row(
        "sequential", f"{baseline_s:.2f} s", f"{status.total / baseline_s:.0f} /s", "1.0×"
    )
    table.add_row(
        "sluice",
        f"{elapsed:.2f} s",
        f"{status.total / elapsed:.0f} /s",
        f"[bold green]{baseline_s / elapsed:.1f}×",
    )
    return table


def closing_hint() -> str:
    return (
        f"The results persist in {DATA_DIR} (append-only file). To look again, start a "
        "worker there and ask:"
    )


def hint_commands(job_id: str) -> list[str]:
    """Commands short enough for an 80-column terminal, whatever the job id's length."""
    return [
        f"export SLUICE_DATA_DIR={DATA_DIR}",
        ".venv/bin/sluice-worker &",
        f".venv/bin/sluice results {job_id} --json | head",
    ]


async def demo(documents: int, latency_s: float) -> None:
    corpus = make_corpus(documents)
    size_mb = sum(map(len, corpus.values())) / 1e6
    console.print(
        f"[bold]Corpus:[/] {len(corpus)} documents, {size_mb:.1f} MB, "
        f"served with {latency_s * 1000:.0f} ms latency"
    )
    runner, port = await serve(corpus, latency_s)
    worker = start_worker()
    try:
        settings = ClientSettings(data_dir=DATA_DIR, _env_file=None)
        async with Client(settings) as client:
            await wait_for_worker(client, worker)
            urls = [f"http://127.0.0.1:{port}/{name}" for name in corpus]
            job_id = await client.enqueue("text-stats", urls)
            console.print(f"[bold]Enqueued[/] text-stats job [cyan]{job_id}[/]")
            status = await watch(client, job_id, 0.1, console)
            console.print(render_status(status))
            console.print("Running the same inputs sequentially for comparison…")
            baseline_s = await sequential(client, urls)
            console.print(summary(status, baseline_s))
            console.print(closing_hint())
            for command in hint_commands(job_id):  # whole lines: a command never wraps
                console.print(f"  [cyan]{command}[/]", soft_wrap=True)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run Sluice's end-to-end demo.")
    parser.add_argument("--documents", type=int, default=DOCUMENTS, help="corpus size")
    parser.add_argument("--latency-ms", type=float, default=LATENCY_S * 1000, help="per request")
    args = parser.parse_args()
    asyncio.run(demo(args.documents, args.latency_ms / 1000))


if __name__ == "__main__":
    main()
