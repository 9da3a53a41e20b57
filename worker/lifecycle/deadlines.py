"""Job timeouts for every running job from one periodic check, not a timer per job.

``asyncio.timeout`` arms and disarms a loop timer per job (~10 µs on uvloop, measured), a
cost every small job paid though nearly none times out. ``async with deadlines.limit(s)``
records the task with its deadline instead (a dict insert), one task looks every
``interval_s`` for tasks past theirs and cancels them, and the block turns that cancel into
TimeoutError, as ``asyncio.timeout`` does. A timeout fires up to ``interval_s`` late, which
SLUICE_JOB_TIMEOUT_S (seconds to hours) can spare.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

CHECK_S = 0.1


class Deadlines:
    def __init__(self, interval_s: float = CHECK_S) -> None:
        self.interval_s = interval_s
        self._due: dict[asyncio.Task[object], float] = {}  # task: monotonic deadline
        self._expired: set[asyncio.Task[object]] = set()  # cancelled for their deadline

    def limit(self, timeout_s: float) -> Deadline:
        """A block the current task must leave within ``timeout_s``, or get TimeoutError."""
        return Deadline(self, timeout_s)

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


class Deadline:
    """One task's time limit (`Deadlines.limit`)."""

    __slots__ = ("_deadlines", "_task", "_timeout_s")

    def __init__(self, deadlines: Deadlines, timeout_s: float) -> None:
        self._deadlines, self._timeout_s = deadlines, timeout_s
        self._task: asyncio.Task[object] | None = None

    async def __aenter__(self) -> None:
        self._task = task = asyncio.current_task()
        assert task is not None, "a deadline is for a task"
        self._deadlines._due[task] = time.monotonic() + self._timeout_s

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        deadlines, task = self._deadlines, self._task
        assert task is not None
        deadlines._due.pop(task, None)
        if task not in deadlines._expired:
            return
        deadlines._expired.discard(task)
        # the cancel was ours: take it back; TimeoutError unless another cancel is pending
        # (`sluice cancel`, a stop), which stays a cancel
        if task.uncancel() == 0 and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc
