"""What SLUICE_REDIS_WAIT_REPLICAS=1 costs: tiny jobs per second with and without it.

Run by hand (not part of `make bench`)::

    .venv/bin/python -m benchmarks.replica_wait [--jobs 3000] [--rounds 3]

Starts a primary and one replica on loopback (Debian's redis-server if installed, else the
embedded Valkey), then, for each round, with WAIT off and on in turn: one producer's
`Client.enqueue` calls one after another (enqueues/s), and one real worker running
``--jobs`` one-input jobs queued with `enqueue_many` (jobs/s from the first enqueue to the
last job's end). Prints the median of each.

Measured on the 2-core development VM (redis-server 7.0, shared and noisy), WAIT off → on:
tiny jobs/s 2,608 → 2,054 (10,000 jobs, 3 rounds) and 3,175 → 2,579 (3,000 jobs, 5 rounds);
enqueues/s 2,908 → 2,647 and 3,140 → 2,557.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.systems.base import wait_until
from producer import Client, ClientSettings
from tests.support.processes import terminate
from tests.support.servers import Server, redis_server_binary, replica_of, valkey_binary

ENQUEUES = 500
BULK = 1000
ROOT = Path(__file__).resolve().parents[1]


def settings(server: Server, namespace: str, wait: int) -> ClientSettings:
    return ClientSettings(
        redis_url=server.url, namespace=namespace, redis_wait_replicas=wait, _env_file=None
    )


async def enqueue_rate(server: Server, wait: int) -> float:
    """Single enqueues per second from one producer, one after another."""
    async with Client(settings(server, f"e{uuid.uuid4().hex[:8]}", wait)) as client:
        await client.enqueue("text-stats", ["data:,warm"])
        start = time.perf_counter()
        for i in range(ENQUEUES):
            await client.enqueue("text-stats", [f"data:,{i}"], defer_s=3600)
        return ENQUEUES / (time.perf_counter() - start)


def start_worker(server: Server, namespace: str, wait: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(
        SLUICE_REDIS_URL=server.url,
        SLUICE_NAMESPACE=namespace,
        SLUICE_POOL_SIZE="2",
        SLUICE_LOG_LEVEL="warning",
        SLUICE_LOG_FORMAT="json",
        SLUICE_DATA_DIR=str(log.parent),
        SLUICE_REDIS_WAIT_REPLICAS=str(wait),
        PYTHONPATH=str(ROOT),
    )
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "worker"], env=env, stdout=out, stderr=out)


async def tiny_jobs_rate(server: Server, jobs: int, wait: int, logs: Path) -> float:
    """One-input jobs per second through one worker, enqueue to last ending."""
    namespace = f"t{uuid.uuid4().hex[:8]}"
    worker = start_worker(server, namespace, wait, logs / f"{namespace}.log")
    try:
        async with Client(settings(server, namespace, wait)) as client:

            async def worker_up() -> bool:
                return (await client.stats()).workers > 0

            async def all_ended() -> bool:
                return not await client.redis.zcard(client.keys.queue)

            await wait_until(worker_up, "the worker starting")
            start = time.perf_counter()
            for first in range(0, jobs, BULK):
                count = min(BULK, jobs - first)
                await client.enqueue_many(
                    "text-stats", [[f"data:,{first + i}"] for i in range(count)]
                )
            await wait_until(all_ended, "every job ending", 600)
            elapsed = time.perf_counter() - start
            failed = (await client.stats()).failed
            assert failed == 0, f"{failed} jobs failed"
            return jobs / elapsed
    finally:
        terminate(worker)


async def measure(jobs: int, rounds: int) -> None:
    binary = redis_server_binary() or valkey_binary()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        primary = Server(binary, base / "primary").start()
        replica = replica_of(primary, base / "replica")
        results: dict[int, dict[str, list[float]]] = {0: {}, 1: {}}
        try:
            for n in range(rounds):
                for wait in (0, 1):
                    runs = results[wait]
                    runs.setdefault("enqueue", []).append(await enqueue_rate(primary, wait))
                    runs.setdefault("tiny", []).append(
                        await tiny_jobs_rate(primary, jobs, wait, base)
                    )
                    print(
                        f"round {n + 1}, wait {wait}: "
                        f"{runs['enqueue'][-1]:.0f} enqueues/s, {runs['tiny'][-1]:.0f} jobs/s",
                        flush=True,
                    )
        finally:
            replica.stop()
            primary.stop()
    print(f"\n{Path(binary).name}, {os.cpu_count()} cores, median of {rounds} rounds:")
    for what, unit in (
        ("enqueue", "enqueues/s (one producer, one at a time)"),
        ("tiny", f"tiny jobs/s ({jobs} one-input jobs, one worker)"),
    ):
        off, on = (statistics.median(results[w][what]) for w in (0, 1))
        print(f"  {unit}: without WAIT {off:.0f}, with WAIT 1 {on:.0f} ({on / off - 1:+.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(measure(args.jobs, args.rounds))


if __name__ == "__main__":
    main()
