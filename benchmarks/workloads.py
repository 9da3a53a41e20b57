"""The workloads: what inputs each has, how they are served, and its physical limit.

Inputs are URIs: ``http://127.0.0.1:PORT/{latency_ms}/{kind}/{index}`` served by
``benchmarks.http_server`` (the path says how long to wait and what to answer), or
``data:`` URIs for the queue-overhead workloads. ``payload`` is the one definition of what
each input's bytes are, shared by the server and the in-process CPU calibration.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

SYLLABLES = ["sl", "ui", "ce", "ga", "te", "ri", "ver", "lo", "ck", "we", "ir", "po", "ol"]
SMALL_BYTES = 256
CALIBRATION_SAMPLE = 400  # inputs whose transform CPU time is measured; the rest extrapolated


@dataclass(frozen=True)
class Workload:
    """One workload at scale 1.0 (the issue's sizes)."""

    name: str
    description: str
    inputs: int
    latency_s: float
    kind: str  # "text" (30-80 KB documents), "small" (256 bytes) or "data" (data: URIs)
    transform: str  # a key of transforms.TRANSFORMS
    sluice_pipeline: str
    sluice_jobs: int  # Sluice gets this many jobs sharing the inputs (0: one job per input)
    has_limit: bool = True  # efficiency is meaningful (not for pure queue-overhead runs)
    only: tuple[str, ...] = ()  # the systems it runs on (empty: all)
    checkpoint: int = 0  # also report peak RSS when this many inputs (scaled) are stored
    fetch_concurrency: int = 0  # fetches in flight per worker (0: --fetch-concurrency)
    pool_size: int = 0  # Sluice's pool processes per worker (0: one per core)

    def count(self, scale: float) -> int:
        return max(1, round(self.inputs * scale))

    def checkpoint_count(self, scale: float) -> int:
        return max(1, round(self.checkpoint * scale)) if self.checkpoint else 0

    def fetches(self, default: int) -> int:
        """Fetches in flight per worker: the workload's own, else ``default``."""
        return self.fetch_concurrency or default

    def runs_on(self, system: str) -> bool:
        return not self.only or system in self.only

    def uris(self, count: int, http_base: str) -> list[str]:
        if self.kind == "data":
            return [f"data:,bench-{i:07d}" for i in range(count)]
        latency_ms = round(self.latency_s * 1000)
        return [f"{http_base}/{latency_ms}/{self.kind}/{i}" for i in range(count)]


# Scale-out: Sluice on 1, 2 and 4 worker processes sharing one Redis, each given 8 fetches
# and 1 pool process, on latency-bound inputs: the limit is latency × inputs / (8 × workers).
FLEET = ("sluice", "sluice×2", "sluice×4")

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "mixed",
            "text documents of 30-80 KB, 40 ms latency, text-stats",
            400,
            0.040,
            "text",
            "text-stats",
            "text-stats",
            1,
        ),
        Workload(
            "cpu",
            "small inputs, a transform of ~50-100 ms CPU",
            200,
            0.0,
            "small",
            "cpu",
            "bench-cpu",
            1,
        ),
        Workload(
            "io",
            "small inputs, 200 ms latency, a trivial transform",
            2000,
            0.200,
            "small",
            "trivial",
            "bench-trivial",
            1,
        ),
        Workload(
            "tiny",
            "single-input jobs (data: URIs), a trivial transform",
            10_000,
            0.0,
            "data",
            "trivial",
            "bench-trivial",
            0,
            has_limit=False,
        ),
        Workload(
            "huge",
            "one job of generated data: URIs, a trivial transform (Sluice only)",
            100_000,
            0.0,
            "data",
            "trivial",
            "bench-trivial",
            1,
            has_limit=False,
            only=("sluice",),
            checkpoint=10_000,
        ),
        Workload(
            "scale-backlog",
            "8 jobs queued at once, 200 ms latency, a trivial transform; "
            "8 fetches and 1 pool process per worker",
            1600,
            0.200,
            "small",
            "trivial",
            "bench-trivial",
            8,
            only=FLEET,
            fetch_concurrency=8,
            pool_size=1,
        ),
        Workload(
            "scale-big",
            "one job, 200 ms latency, a trivial transform; 8 fetches and 1 pool process per worker",
            4000,
            0.200,
            "small",
            "trivial",
            "bench-trivial",
            1,
            only=FLEET,
            fetch_concurrency=8,
            pool_size=1,
        ),
    )
}
ALIASES = {"cpu-heavy": "cpu", "io-heavy": "io", "tiny-jobs": "tiny", "huge-job": "huge"}
GROUPS = {"scale-out": ("scale-backlog", "scale-big")}


def word(rng: random.Random) -> str:
    return "".join(rng.choices(SYLLABLES, k=rng.randint(1, 4)))


@lru_cache(maxsize=4096)
def text_document(index: int) -> bytes:
    """Document ``index``: 30-80 KB of generated words, some capitalised, in lines."""
    rng = random.Random(index)
    target = rng.randint(30_000, 80_000)
    vocabulary = [word(rng) for _ in range(300)] + ["Sluice", "River", "Gate"]
    words = rng.choices(vocabulary, k=target // 5)
    lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
    return "\n".join(lines).encode()[:target]


def payload(kind: str, index: int) -> bytes:
    """The bytes behind input ``index`` of a workload of this kind."""
    if kind == "text":
        return text_document(index)
    if kind == "small":
        return f"input {index} ".encode().ljust(SMALL_BYTES, b".")
    if kind == "data":
        return f"bench-{index:07d}".encode()
    raise ValueError(f"unknown payload kind {kind!r}")


def limit_s(workload: Workload, count: int, cpu_s: float, cores: int, fetches: int) -> float:
    """The physical limit: max(transform CPU / cores, latency × inputs / fetches in flight),
    ``fetches`` summed over every worker process of the system."""
    return max(cpu_s / cores, workload.latency_s * count / fetches)


def resolve(names: str) -> list[Workload]:
    """Workloads named in a comma-separated list ("all" for every one; "scale-out" for both
    of its workloads)."""
    if names.strip() == "all":
        return list(WORKLOADS.values())
    chosen = []
    for raw in names.split(","):
        name = ALIASES.get(raw.strip(), raw.strip())
        for one in GROUPS.get(name, (name,)):
            if one not in WORKLOADS:
                choices = ", ".join([*WORKLOADS, *GROUPS])
                raise SystemExit(f"unknown workload {raw!r}; choose from {choices}")
            chosen.append(WORKLOADS[one])
    return chosen
