"""The worker's one process pool: created at start-up, shared by every job, shut down at exit.

Transforms reach it only through ``loop.run_in_executor``, with plain data in and out. The
executor (`worker.pool.process_pool`) survives a process that dies (the call fails, a new process
takes over) and really kills a call that runs past its time limit. Processes start with
forkserver: safe beside a running loop and threads.
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

from worker.errors import TransformError, described
from worker.observe import metrics
from worker.pool.process_pool import ProcessDied, ProcessExecutor, TaskTimedOut
from worker.pool.transform_child import Outcome, init, run_batch


class TransformPool:
    def __init__(
        self,
        size: int,
        modules: Sequence[str],
        task_timeout_s: float | None = None,
        max_tasks: int = 0,
        shared_bytes: int = 0,
    ) -> None:
        self.size = size
        self.shared_bytes = shared_bytes
        self.task_timeout_s = task_timeout_s
        self.max_tasks = max_tasks
        self._modules = list(modules)
        self._executor: ProcessExecutor | None = None
        self.calls_in_flight = 0

    def _timeout_of(self, args: tuple[Any, ...]) -> float | None:
        """A call's time limit: the per-input limit times its inputs (the warm-up's no-op has
        none). A process's start-up, the pipelines' import, is never on the clock: the pool
        starts it when the process says it is ready."""
        if self.task_timeout_s is None:
            return None
        return self.task_timeout_s * max(1, len(args[2]) if len(args) == 3 else 0)

    def start(self) -> None:
        """Start the processes (from the event loop that will use the pool)."""
        self._executor = ProcessExecutor(
            self.size,
            init,
            (self._modules,),
            timeout_of=self._timeout_of,
            max_tasks=self.max_tasks,
            on_replace=lambda reason: metrics.POOL_RESTARTS.labels(reason).inc(),
            shared_bytes=self.shared_bytes,
        )
        self._executor.start()

    async def warm_up(self) -> None:
        """Have every process load the pipelines now, so the first job does not wait for it."""
        assert self._executor is not None, "pool not started"
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(self._executor, _noop) for _ in range(self.size))
        )

    async def run(
        self, pipeline: str, options: Mapping[str, Any], payloads: Sequence[bytes]
    ) -> list[Outcome]:
        """Transform a batch in a pool process; TransformError if the call failed: its process
        died or timed out, or the call itself could not be made or answered."""
        assert self._executor is not None, "pool not started"
        loop = asyncio.get_running_loop()
        self.calls_in_flight += 1
        try:
            # the only bridge into the pool: plain data in, plain data out
            # PickleBuffer: the payloads go through memory shared with the process, not the pipe
            buffers = [pickle.PickleBuffer(p) for p in payloads]
            return await loop.run_in_executor(self._executor, run_batch, pipeline, options, buffers)
        except ProcessDied as exc:
            raise TransformError(f"transform process died (exit code {exc.exitcode})") from None
        except TaskTimedOut as exc:
            raise TransformError(
                f"transform timed out after {exc.timeout_s:g} s and its process was killed"
            ) from None
        except Exception as exc:  # arguments or an answer that cannot cross, or a bug
            raise TransformError(f"transform call failed: {described(exc)}") from None
        finally:
            self.calls_in_flight -= 1

    @property
    def running(self) -> bool:
        """Whether the pool is started and not broken."""
        return self._executor is not None and self._executor.alive

    @property
    def busy(self) -> int:
        """Processes running a call now (calls beyond the pool size wait in its queue)."""
        return min(self.calls_in_flight, self.size)

    def stop(self) -> None:
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None


def _noop() -> None:
    return None
