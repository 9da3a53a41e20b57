"""Counts pool processes that pebble replaced after SLUICE_POOL_MAX_TASKS (recycles).

Crashes and timeouts show as errors on the task's future, so the pool counts those itself.
A recycle shows nowhere: the process simply exits 0 once it has run its share of tasks and
pebble starts another. So each time pebble starts a process, the processes seen so far that
have exited are looked at: an exit code of 0 is a recycle (crashed and killed processes exit
non-zero). This reads pebble internals; if they change, recycles go uncounted and nothing
else is affected.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any


def watch_recycles(pool: Any, on_recycle: Callable[[], None]) -> bool:
    """Hook into ``pool`` (a pebble ProcessPool); False if its internals are not as expected."""
    manager = getattr(getattr(pool, "_pool_manager", None), "worker_manager", None)
    workers = getattr(manager, "workers", None)
    original = getattr(manager, "new_worker", None)
    if manager is None or not isinstance(workers, dict) or not callable(original):
        return False
    seen: dict[int, BaseProcess] = {}
    lock = threading.Lock()  # pebble starts processes from its manager thread

    def new_worker() -> None:
        with lock:
            for pid, process in list(seen.items()):
                if process.exitcode is not None:
                    del seen[pid]
                    if process.exitcode == 0:
                        on_recycle()
            original()
            for pid, process in workers.items():
                seen.setdefault(pid, process)

    manager.new_worker = new_worker
    return True
