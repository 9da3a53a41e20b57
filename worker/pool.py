"""The worker's one process pool: created at start-up, shared by every job, shut down at exit.

A pebble pool, because unlike the standard ProcessPoolExecutor it survives a child that
dies (the task fails, the pool replaces the process) and really kills a task that runs
past its time limit. Processes start with forkserver: safe beside a running loop and threads.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from pebble import ProcessExpired, ProcessPool

from worker import metrics
from worker.errors import TransformError
from worker.pool_child import Outcome, init, run_batch
from worker.pool_watch import watch_recycles


class TransformPool:
    def __init__(
        self,
        size: int,
        modules: Sequence[str],
        task_timeout_s: float | None = None,
        max_tasks: int = 0,
    ) -> None:
        self.size = size
        self.task_timeout_s = task_timeout_s
        self.max_tasks = max_tasks
        self._modules = list(modules)
        self._pool: ProcessPool | None = None
        self.calls_in_flight = 0

    def start(self) -> None:
        self._pool = ProcessPool(
            max_workers=self.size,
            max_tasks=self.max_tasks,
            initializer=init,
            initargs=(self._modules,),
            context=multiprocessing.get_context("forkserver"),
        )
        watch_recycles(self._pool, metrics.POOL_RESTARTS.labels("recycle").inc)

    async def warm_up(self) -> None:
        """Start every process now, so the first job does not pay for it."""
        assert self._pool is not None, "pool not started"
        await asyncio.gather(
            *(asyncio.wrap_future(self._pool.schedule(_noop)) for _ in range(self.size))
        )

    async def run(
        self, pipeline: str, options: Mapping[str, Any], payloads: Sequence[bytes]
    ) -> list[Outcome]:
        """Transform a batch in a pool process; TransformError if the process died or timed out."""
        assert self._pool is not None, "pool not started"
        timeout = None if self.task_timeout_s is None else self.task_timeout_s * len(payloads)
        self.calls_in_flight += 1
        try:
            # the only bridge into the pool: plain data in, plain data out
            future = self._pool.schedule(run_batch, (pipeline, options, payloads), timeout=timeout)
            return await asyncio.wrap_future(future)
        except ProcessExpired as exc:
            metrics.POOL_RESTARTS.labels("crash").inc()
            raise TransformError(f"transform process died (exit code {exc.exitcode})") from None
        except FutureTimeout:
            metrics.POOL_RESTARTS.labels("timeout").inc()
            raise TransformError(
                f"transform timed out after {timeout:g} s and its process was killed"
            ) from None
        finally:
            self.calls_in_flight -= 1

    @property
    def running(self) -> bool:
        """Whether the pool is started and not broken."""
        return self._pool is not None and bool(self._pool.active)

    @property
    def busy(self) -> int:
        """Processes running a call now (calls beyond the pool size wait in its queue)."""
        return min(self.calls_in_flight, self.size)

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.stop()  # type: ignore[no-untyped-call]  # pebble leaves it unannotated
            self._pool.join()
            self._pool = None


def _noop() -> None:
    return None
