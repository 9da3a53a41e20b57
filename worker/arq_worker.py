"""arq's Worker, with the three things Sluice needs it to do differently.

- Leases: the in-progress key lives ``SLUICE_LEASE_S`` (not job timeout + 10 s) and the
  job renews it while it runs, so a dead worker's job is taken over within the lease.
- Draining: the first SIGTERM/SIGINT stops taking jobs and lets in-flight inputs finish
  for ``SLUICE_SHUTDOWN_GRACE_S``; unfinished jobs go back to the queue. A second signal,
  or the end of the grace period, stops at once.
- A lost Redis connection in the poll loop is logged and retried, not fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
from signal import Signals
from typing import Any

import structlog
from arq import Worker
from redis.exceptions import RedisError

log = structlog.get_logger("sluice.worker")

POLL_RETRY_MAX_S = 5.0


class SluiceWorker(Worker):
    def __init__(self, *args: Any, lease_s: float, grace_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_progress_timeout_s = lease_s
        self.grace_s = grace_s
        self.draining = asyncio.Event()
        self._poll_failures = 0

    def handle_sig(self, signum: Signals) -> None:
        if self.draining.is_set() or not self.tasks:
            log.info("stopping now", signal=Signals(signum).name, jobs=len(self.tasks))
            super().handle_sig(signum)
            return
        log.info(
            "draining", signal=Signals(signum).name, jobs=len(self.tasks), grace_s=self.grace_s
        )
        self.allow_pick_jobs = False
        self.draining.set()
        self.loop.create_task(self._drain(signum))

    async def _drain(self, signum: Signals) -> None:
        pending = [t for t in self.tasks.values() if not t.done()]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), self.grace_s)
        super().handle_sig(signum)

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
            self._poll_failures = 0
        except (RedisError, OSError) as exc:
            self._poll_failures += 1
            delay = min(0.1 * 2**self._poll_failures, POLL_RETRY_MAX_S)
            log.warning("Redis unavailable, retrying", error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
