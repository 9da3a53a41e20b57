"""Job timeouts for every running job from one periodic check, not a timer per job.

``asyncio.timeout`` arms and disarms a loop timer per job (~10 µs on uvloop, measured), a
cost every small job paid though nearly none times out. Here a job's task is recorded with
its deadline (a dict insert), and one task looks every ``interval_s`` for tasks past theirs
and cancels them; the job converts that cancel into TimeoutError (`expired`). A timeout
fires up to ``interval_s`` late, which SLUICE_JOB_TIMEOUT_S (seconds to hours) can spare.
"""

from __future__ import annotations

import asyncio
import time

CHECK_S = 0.1


class Deadlines:
    def __init__(self, interval_s: float = CHECK_S) -> None:
        self.interval_s = interval_s
        self._due: dict[asyncio.Task[object], float] = {}  # task: monotonic deadline
        self._expired: set[asyncio.Task[object]] = set()

    def watch(self, timeout_s: float) -> asyncio.Task[object]:
        """Cancel the current task once ``timeout_s`` has passed, unless `forget` comes first."""
        task = asyncio.current_task()
        assert task is not None
        self._due[task] = time.monotonic() + timeout_s
        return task

    def forget(self, task: asyncio.Task[object]) -> None:
        self._due.pop(task, None)
        self._expired.discard(task)

    def expired(self, task: asyncio.Task[object]) -> bool:
        """Whether ``task`` was cancelled for its deadline; if so, the cancel is taken back
        (as ``asyncio.timeout`` does), so the caller can raise TimeoutError instead."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        task.uncancel()
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self.check(time.monotonic())

    def check(self, now: float) -> None:
        """Cancel every watched task whose deadline is ``now`` or earlier."""
        late = [task for task, deadline in self._due.items() if deadline <= now]
        for task in late:
            del self._due[task]
            if not task.done():
                self._expired.add(task)
                task.cancel()
