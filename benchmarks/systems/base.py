"""What every system under test provides to the runner, and helpers they share.

A system starts its processes (and warms them up with one input), then the runner clocks
``submit`` (enqueue every input) and polls ``done`` until every input has a record. Every
system stores one record per input in Redis under its own fresh namespace.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TypeVar

import psutil  # type: ignore[import-untyped,unused-ignore]  # stubs: types-psutil, optional

from benchmarks.workloads import Workload
from producer.redis.typed import Redis

REPO = Path(__file__).resolve().parents[2]
WARMUP_URI = "data:,warm-up"
T = TypeVar("T")


@dataclass
class Context:
    """What the harness gives every system for one run."""

    redis: Redis
    redis_url: str
    namespace: str  # fresh for every (workload, system) run
    cores: int
    fetch_concurrency: int  # per worker process
    poll_delay_s: float
    log_dir: Path
    infra_pids: list[int] = field(default_factory=list)  # the Redis and HTTP servers
    celery_python: Path | None = None
    celery_concurrency: int = 0  # 0: cores
    sluice_env: dict[str, str] = field(default_factory=dict)
    pool_size: int = 0  # Sluice's pool processes per worker (0: one per core)


class System(abc.ABC):
    """One system under test, for one workload."""

    name: ClassVar[str]
    workers: ClassVar[int] = 1  # worker processes sharing the work (the limit's fetches × this)

    def __init__(self, ctx: Context, workload: Workload, uris: list[str]) -> None:
        self.ctx, self.workload, self.uris = ctx, workload, uris
        self.results_key = f"{ctx.namespace}:results"
        self.processes: list[Managed] = []  # those whose exit during a run is an error
        self.poll_commands = 0  # Redis commands ``done`` has sent (not the system's load)

    @abc.abstractmethod
    def given(self) -> str:
        """The concurrency this system was given, in words."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Start the system's processes and warm them up; return once it is ready."""

    @abc.abstractmethod
    def pids(self) -> list[int]:
        """The root processes of the system under test (their descendants count too)."""

    @abc.abstractmethod
    async def submit(self) -> None:
        """Enqueue every input (clocked)."""

    async def done(self) -> int:
        """Inputs finished so far."""
        self.poll_commands += 1
        return int(await self.ctx.redis.hlen(self.results_key))

    async def failures(self) -> int:
        """Inputs whose record is an error (read once the run is over)."""
        values = await self.ctx.redis.hvals(self.results_key)
        return sum(1 for value in values if b'"ok":false' in value)

    def check(self) -> None:
        """Raise if a process of the system has died."""
        for process in self.processes:
            process.check()

    def servers(self) -> list[Redis]:
        """A client to each Redis server the system uses: the run sums their commands and CPU."""
        return [self.ctx.redis]

    def infra_pids(self) -> list[int]:
        """The servers' processes (Redis, HTTP), whose CPU the run reports apart."""
        return self.ctx.infra_pids

    async def collect(self) -> None:
        """Read anything the system reports about the run, before it stops."""
        return

    def extra(self) -> dict[str, object]:
        """Anything else worth keeping in results.json."""
        return {}

    @abc.abstractmethod
    async def stop(self, graceful: bool) -> None:
        """Stop every process; ``graceful=False`` after a run cut short by the time budget."""


class Managed:
    """A subprocess with its output in a log file, stopped with its whole tree."""

    def __init__(
        self,
        args: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path = REPO,
    ) -> None:
        self.log_path = log_path
        env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                list(args),
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def check(self) -> None:
        if not self.alive():
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.process.args!r} exited {self.process.returncode}:\n{tail}")

    def tell(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    async def stop(
        self, graceful: bool = True, sig: int = signal.SIGTERM, wait_s: float = 30
    ) -> None:
        """Signal the process (graceful) and wait; then kill whatever is left of its tree."""
        try:
            descendants = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            descendants = []
        if graceful and self.alive():
            self.process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self.process.wait, wait_s)
        for proc in descendants:  # pool processes a dead parent left behind, too
            try:
                proc.kill()
            except psutil.Error:
                continue
        if self.alive():
            self.process.kill()
        self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


async def bounded(worker: Callable[[T], Awaitable[object]], items: Iterable[T], tasks: int) -> None:
    """Run ``worker`` over ``items`` with at most ``tasks`` running at once."""
    iterator = iter(items)

    async def drain() -> None:
        for item in iterator:
            await worker(item)

    await asyncio.gather(*(drain() for _ in range(tasks)))


async def wait_until(
    check: Callable[[], Awaitable[bool]],
    what: str,
    timeout_s: float = 60.0,
    alive: Callable[[], None] | None = None,
) -> None:
    """Poll ``check`` until true; TimeoutError naming ``what`` past the timeout."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if alive is not None:
            alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout_s:g} s")
        await asyncio.sleep(0.02)
