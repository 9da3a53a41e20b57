"""arq's Worker, with what Sluice needs it to do differently.

- Claiming: each poll claims, reads and marks started every due job it has room for in one
  Lua call (`worker.claim`), not arq's six round trips per job; each runs as one attempt
  (`worker.attempt`) whose ending is batched with others (`worker.endings`).
- Waking: an idle worker waits on the wake list the producer pushes to at enqueue, so a
  new job starts at once rather than at the next poll; a busy one polls again as soon as
  jobs end. ``SLUICE_POLL_DELAY_S`` is only the longest wait (deferred jobs, raw enqueues).
- Leases: the in-progress key lives ``SLUICE_LEASE_S`` (not job timeout + 10 s) and one task
  renews every held lease (`worker.lease`), so a dead worker's job is taken over quickly.
- Draining: the first SIGTERM/SIGINT stops taking jobs and lets in-flight inputs finish
  for ``SLUICE_SHUTDOWN_GRACE_S``; unfinished jobs go back to the queue. A second signal,
  or the end of the grace period, stops at once.
- A lost Redis connection in the poll loop is logged and retried, not fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from signal import Signals
from typing import Any

import structlog
from arq import Worker
from redis.exceptions import RedisError

from producer.keys import Keys
from worker.attempt import run_attempt
from worker.claim import Claimer
from worker.endings import Endings
from worker.lease import Leases

log = structlog.get_logger("sluice.worker")

POLL_RETRY_MAX_S = 5.0


class SluiceWorker(Worker):
    def __init__(
        self,
        *args: Any,
        keys: Keys,
        name: str,
        lease_s: float,
        grace_s: float,
        result_ttl_s: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, keep_result=result_ttl_s, **kwargs)
        self.keys, self.name = keys, name
        self.in_progress_timeout_s = lease_s
        self.grace_s = grace_s
        self.result_ttl_s = result_ttl_s
        self.draining = asyncio.Event()
        self._poll_failures = 0
        self._backlog = False  # the last claim stopped at the limit: more jobs may be due
        self._slot_freed = asyncio.Event()
        self._aborts_checked = 0.0
        self._background: list[asyncio.Task[None]] = []

    async def start_lifecycle(self) -> None:
        """Start claiming, lease renewal and batched endings (from on_startup: needs Redis)."""
        self.claimer = Claimer(self.pool, self.keys, self.name, self.in_progress_timeout_s)
        self.leases = Leases(self.pool, self.in_progress_timeout_s)
        self.endings = Endings(self.pool, self.keys, self.name, self.result_ttl_s)
        self.endings.start()
        self._background.append(asyncio.create_task(self.leases.run(), name="sluice-leases"))

    async def stop_lifecycle(self) -> None:
        """After the last attempt ended: write the endings still waiting, stop renewing."""
        for task in self._background:
            task.cancel()
        self._background.clear()
        await self.endings.stop()

    async def main(self) -> None:
        """arq's main loop, with a wait for work in place of its fixed sleep."""
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        while True:
            await self._poll_iteration()
            await self._wait_for_work()

    async def _wait_for_work(self) -> None:
        delay = self.poll_delay_s
        if self.allow_pick_jobs and self._backlog:
            # jobs are waiting for room: look again as soon as some of ours end
            self._slot_freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), delay)
        elif self.allow_pick_jobs and self.job_counter < self.max_jobs:
            # a producer's enqueue pushes a token: an idle worker starts at once
            try:
                await self.pool.blpop([self.keys.wake], timeout=delay)
            except (RedisError, OSError):
                await asyncio.sleep(delay)  # the next poll reports it
        else:
            await asyncio.sleep(delay)

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        self._slot_freed.set()

    async def _poll_iteration(self) -> None:
        try:
            await self._poll_once()
            self._poll_failures = 0
        except (RedisError, OSError) as exc:
            self._poll_failures += 1
            delay = min(0.1 * 2**self._poll_failures, POLL_RETRY_MAX_S)
            log.warning("Redis unavailable, retrying", error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)

    async def _poll_once(self) -> None:
        """Claim what there is room for; check for aborts; forget finished tasks (as arq)."""
        free = self.max_jobs - self.job_counter
        self._backlog = False
        if self.allow_pick_jobs and free > 0:
            await self._claim(free)
        now = time.monotonic()
        if self.allow_abort_jobs and now - self._aborts_checked >= self.poll_delay_s:
            self._aborts_checked = now
            await self._cancel_aborted_jobs()
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                task.result()  # an attempt never raises: this surfaces a bug
        await self.heart_beat()

    async def _claim(self, free: int) -> None:
        claimed, self._backlog = await self.claimer.claim(free, self.queue_read_limit)
        for job in claimed:
            await self.sem.acquire()  # never waits: at most `free` were claimed
            self.job_counter += 1
            self.leases.held.add(job.job_id)
            task = self.loop.create_task(run_attempt(self, job))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job.job_id] = task

    async def close(self) -> None:
        """arq's close, except that an unreachable Redis does not skip on_shutdown (which
        stops the pool and the stages): the unwritten endings' jobs are redone elsewhere."""
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)
        if not self._pool:
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self.pool.delete(self.health_check_key)
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        with contextlib.suppress(RedisError, OSError):
            await self.pool.close(close_connection_pool=True)
        self._pool = None

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
