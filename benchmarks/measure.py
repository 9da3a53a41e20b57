"""Measuring a system under test: RSS of its process trees over time, CPU time, the machine,
the Redis servers' own counts.

``RssSampler`` samples, in a thread, the summed RSS of some root processes and all their
descendants (a worker plus its pool processes); the summed RSS counts pages shared between
a parent and its forked children once per process, so it errs high, alike for every system.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped,unused-ignore]  # stubs: types-psutil, optional

MB = 1_000_000


def tree(pids: Sequence[int]) -> list[psutil.Process]:
    """The processes ``pids`` and all their live descendants."""
    found: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for proc in (root, *root.children(recursive=True)):
                found[proc.pid] = proc
        except psutil.Error:
            continue
    return list(found.values())


def tree_rss(pids: Sequence[int], procs: Sequence[psutil.Process] | None = None) -> int:
    """The summed RSS of the trees (of ``procs``, found earlier, if given)."""
    total = 0
    for proc in tree(pids) if procs is None else procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total


@dataclass
class CpuTimes:
    """User + system CPU seconds of the root processes and, apart, of their descendants."""

    roots: float = 0.0
    children: float = 0.0

    def __sub__(self, other: CpuTimes) -> CpuTimes:
        return CpuTimes(self.roots - other.roots, self.children - other.children)


def tree_cpu(pids: Sequence[int]) -> CpuTimes:
    times = CpuTimes()
    for proc in tree(pids):
        try:
            cpu = proc.cpu_times()
        except psutil.Error:
            continue
        if proc.pid in pids:
            times.roots += cpu.user + cpu.system
        else:
            times.children += cpu.user + cpu.system
    return times


@dataclass
class RssSampler:
    """Samples the trees' RSS every ``interval_s`` in a background thread.

    Finding the trees walks every process on the machine (~2.5 ms of CPU on the cores the
    systems under test use), so they are found again only every ``refresh_s``; a sample
    in between reads the RSS of the processes known (~20 µs each).
    """

    pids: Sequence[int]
    interval_s: float = 0.1
    refresh_s: float = 1.0
    samples: list[tuple[float, int]] = field(default_factory=list)  # (monotonic s, bytes)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> RssSampler:
        self.samples.append((time.monotonic(), tree_rss(self.pids)))
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-rss")
        self._thread.start()
        return self

    def _run(self) -> None:
        procs, found = tree(self.pids), time.monotonic()
        while not self._stop.wait(self.interval_s):
            now = time.monotonic()
            if now - found >= self.refresh_s:
                procs, found = tree(self.pids), now
            self.samples.append((now, tree_rss(self.pids, procs)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.samples.append((time.monotonic(), tree_rss(self.pids)))

    def peak(self, until: float | None = None) -> int:
        """The highest sample, of those taken up to ``until`` (monotonic s) if given."""
        values = [rss for t, rss in self.samples if until is None or t <= until]
        return max(values, default=0)


def machine_busy_s() -> float:
    """CPU seconds every process on the machine has used so far (all cores, not idle)."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def code_version(repo: Path) -> dict[str, object]:
    """The commit measured, and the files that differed from it (others edit the tree too)."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
        except OSError:
            return ""
        return done.stdout

    # not stripped: a status line starts with a space (" M path") where the index is clean
    changed = [line[3:] for line in git("status", "--porcelain").splitlines()]
    return {"commit": git("rev-parse", "HEAD").strip(), "changed_files": changed}


def machine_info() -> dict[str, object]:
    return {
        "cores": cores(),
        "ram_bytes": psutil.virtual_memory().total,
        "cpu_model": cpu_model(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average": os.getloadavg(),  # other work on the machine at the start
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


@dataclass(frozen=True)
class ServerCounts:
    """What the Redis server says it has done so far, read in one INFO call."""

    calls: dict[str, int]  # commands run, by name (INFO commandstats)
    cpu_s: float  # CPU it has used, user + system, all its threads (INFO cpu)


async def server_counts(redis: Any) -> ServerCounts:
    info = await redis.info("commandstats", "cpu")
    calls = {
        name.removeprefix("cmdstat_"): int(v["calls"])
        for name, v in info.items()
        if name.startswith("cmdstat_")
    }
    return ServerCounts(calls, float(info["used_cpu_user"]) + float(info["used_cpu_sys"]))


async def total_counts(servers: list[Any]) -> ServerCounts:
    """The counts of several servers (a cluster's nodes) added up."""
    each = await asyncio.gather(*(server_counts(redis) for redis in servers))
    calls: dict[str, int] = {}
    for counts in each:
        for name, n in counts.calls.items():
            calls[name] = calls.get(name, 0) + n
    return ServerCounts(calls, sum(counts.cpu_s for counts in each))
