"""``python -m benchmarks.script_cost``: the Redis CPU a tiny job costs in each script of its
life (the bulk enqueue, the claim, the ending), measured on fixed work with no worker.

The Client enqueues one-input jobs 1,000 a call; a `Claimer` claims them 30 units a call; the
`Endings` writer ends them 30 a call, each with the counters and the record a worker sends
for a one-input job. The server's CPU (``INFO cpu``) is read around every call, less what a
pair of those reads costs. Unlike `make bench`'s tiny workload, the figures do not move with
how a worker's calls happen to batch, so a change of a few microseconds shows.

``--against PATH`` (another checkout of Sluice): the claim and the ending of that tree run
too, a call of each tree in turn on one server, so a change is measured against its
baseline under the same load of the machine. Its scripts must take this tree's arguments.

    python -m benchmarks.script_cost --against /path/to/main
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from producer import Client, ClientSettings
from producer.redis.scripts import BatchedScript
from producer.redis.typed import Redis
from tests.support.servers import Server, valkey_binary
from worker.lifecycle.claim import Claimer, Unit
from worker.lifecycle.claim_script import CLAIM
from worker.lifecycle.end_script import END
from worker.lifecycle.endings import Endings, Entry, flat

BATCH = 30  # units a claim, endings an END call: what a busy worker's calls carry
ENQUEUE_CALL = 1000  # jobs a Client.enqueue_many call
# what a worker's ending of a one-input job carries (benchmarks' trivial transform)
COUNTERS = {
    "fetched": 1,
    "transformed": 1,
    "fetch_count": 1,
    "fetch_s": 2.0411e-05,
    "transform_count": 1,
    "transform_s": 1.6544e-05,
    "store_count": 1,
    "fetch_slot_s": 0.066003,
    "transform_slot_s": 0.002063,
    "store_slot_s": 0.002063,
}
THIS = "this tree"
SOURCE = "import json; from worker.lifecycle import claim_script as c, end_script as e; "
SOURCE += "print(json.dumps({'CLAIM': c.CLAIM, 'END': e.END}))"


@dataclass
class Costs:
    """Server CPU seconds and jobs, per (script, tree)."""

    cpu_s: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    jobs: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))

    def add(self, script: str, tree: str, cpu_s: float, jobs: int) -> None:
        self.cpu_s[script, tree] += cpu_s
        self.jobs[script, tree] += jobs

    def us_per_job(self, script: str, tree: str) -> float:
        return self.cpu_s[script, tree] / self.jobs[script, tree] * 1e6


def scripts_of(path: Path) -> dict[str, str]:
    """The CLAIM and END scripts of another checkout, as its own code builds them."""
    env = {**os.environ, "PYTHONPATH": str(path)}
    out = subprocess.run(
        [sys.executable, "-c", SOURCE], cwd=path, env=env, capture_output=True, check=True
    )
    scripts: dict[str, str] = json.loads(out.stdout)
    return scripts


async def server_cpu_s(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@dataclass
class Bench:
    """A fresh server with the append-only file on, a Client, and a claimer and an endings
    writer per tree (each tree's scripts)."""

    server: Server
    redis: Redis
    client: Client
    claimers: dict[str, Claimer]
    writers: dict[str, Endings]
    reads: float  # the server CPU a pair of INFO reads costs, taken off every figure

    @property
    def trees(self) -> list[str]:
        return list(self.claimers)


@asynccontextmanager
async def bench(against: Path | None, data_dir: Path) -> AsyncIterator[Bench]:
    sources = {THIS: {"CLAIM": CLAIM, "END": END}}
    if against is not None:
        sources[str(against)] = await asyncio.to_thread(scripts_of, against)
    server = await asyncio.to_thread(Server(valkey_binary(), data_dir).start)
    redis = Redis.from_url(server.url)
    client = Client(ClientSettings(redis_url=server.url, namespace="cost"))
    claimers, writers = {}, {}
    for tree, source in sources.items():
        claimers[tree] = Claimer(redis, client.keys, "cost:1", 30.0, 100, 604_800)
        claimers[tree]._script = redis.register_script(source["CLAIM"])
        writers[tree] = Endings(redis, client.keys, result_ttl_s=604_800, most_runs=2)
        writers[tree]._script = BatchedScript(redis, source["END"], "unit ending")
        writers[tree].start()
    try:
        reads = -(await server_cpu_s(redis)) + await server_cpu_s(redis)  # a pair of INFOs
        yield Bench(server, redis, client, claimers, writers, reads)
    finally:
        for writer in writers.values():
            await writer.stop()
        await client.close()
        await redis.aclose()
        await asyncio.to_thread(server.stop)


async def measure(jobs: int, rounds: int, against: Path | None, data_dir: Path) -> Costs:
    """Enqueue, claim and end ``jobs`` tiny jobs ``rounds`` times on a fresh server."""
    costs = Costs()
    async with bench(against, data_dir) as b:
        for _ in range(rounds):
            await run_round(b, jobs, costs)
    return costs


async def run_round(b: Bench, jobs: int, costs: Costs) -> list[str]:
    """Enqueue, claim and end ``jobs`` tiny jobs, the trees' calls in turn; their ids."""
    client, redis, claimers, writers, trees = b.client, b.redis, b.claimers, b.writers, b.trees
    ids: list[str] = []

    async def timed(script: str, tree: str, call: Awaitable[int]) -> None:
        before = await server_cpu_s(redis)
        done = await call
        costs.add(script, tree, await server_cpu_s(redis) - before - b.reads, done)

    async def enqueue(first: int) -> int:
        inputs = [[f"data:,bench-{i:07d}"] for i in range(first, min(jobs, first + ENQUEUE_CALL))]
        ids.extend(await client.enqueue_many("bench-trivial", inputs))
        return len(inputs)

    for first in range(0, jobs, ENQUEUE_CALL):
        await timed("enqueue", THIS, enqueue(first))
    held: list[Unit] = []

    async def claim(tree: str) -> int:
        units = (await claimers[tree].claim(room=BATCH, most=BATCH, aborts_since_ms=0)).units
        held.extend(units)
        return len(units)

    turn = 0
    while len(held) < jobs:
        await timed("claim", trees[turn % len(trees)], claim(trees[turn % len(trees)]))
        turn += 1
    counters = tuple(flat(COUNTERS, []))

    async def end(tree: str, units: list[Unit]) -> int:
        sent = [writers[tree].send(u.job_id, _ending(u, counters), _record(u)) for u in units]
        codes = set(await asyncio.gather(*sent))
        if codes != {"complete"}:
            raise RuntimeError(f"the END script of {tree} answered {codes}, not complete")
        return len(units)

    for turn, first in enumerate(range(0, jobs, BATCH)):
        tree = trees[turn % len(trees)]
        await timed("end", tree, end(tree, held[first : first + BATCH]))
    return ids


def _ending(unit: Unit, counters: tuple[str, ...]) -> Entry:
    return Entry("done", unit.job_id, unit.index, unit.token, plain=1, counters=counters)


def _record(unit: Unit) -> list[str | bytes]:
    record = {
        "index": 0,
        "input": f"data:,{unit.job_id[:19]}",
        "ok": True,
        "result": {"bytes": 13},
        "timings": {"fetch_s": 2e-6, "transform_s": 1e-6},
    }
    return ["0", json.dumps(record, separators=(",", ":")), "1", b""]


def report(costs: Costs) -> str:
    trees = sorted({tree for _, tree in costs.jobs}, key=lambda t: t != THIS)
    lines = [f"{'Redis CPU, us a job':22}" + "".join(f"{t[-24:]:>26}" for t in trees)]
    for script in ("enqueue", "claim", "end"):
        cells = [
            f"{costs.us_per_job(script, t):26.1f}" if costs.jobs[script, t] else f"{'-':>26}"
            for t in trees
        ]
        lines.append(f"{script:22}" + "".join(cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=9000, help="tiny jobs a round (< 10,000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", type=Path, help="another checkout, run interleaved")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        costs = asyncio.run(measure(args.jobs, args.rounds, args.against, Path(data_dir)))
    print(report(costs))


if __name__ == "__main__":
    main()
