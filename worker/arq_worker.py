"""arq's Worker, with the three things Sluice needs it to do differently.

- Leases: the in-progress key lives ``SLUICE_LEASE_S`` (not job timeout + 10 s) and the
  job renews it while it runs, so a dead worker's job is taken over within the lease.
- Draining: the first SIGTERM/SIGINT stops taking jobs and lets in-flight inputs finish
  for ``SLUICE_SHUTDOWN_GRACE_S``; unfinished jobs go back to the queue. A second signal,
  or the end of the grace period, stops at once.
- Claiming: the jobs a poll finds are claimed in one Lua call, not one WATCH/MULTI
  transaction each (four round trips per job in arq), which caps arq near a thousand jobs/s.
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

from producer.keys import ARQ_IN_PROGRESS_PREFIX
from producer.wire import now_ms

log = structlog.get_logger("sluice.worker")

POLL_RETRY_MAX_S = 5.0

# Claim up to ARGV[3] of the given job ids: each must be due (score <= now) and not held.
# KEYS: queue   ARGV: now ms, lease ms, how many, in-progress prefix, job ids...
# Returns a flat list: id, score, id, score...
CLAIM = """
local claimed, count = {}, 0
local limit = tonumber(ARGV[3])
for i = 5, #ARGV do
  if count >= limit then break end
  local id = ARGV[i]
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and tonumber(score) <= tonumber(ARGV[1]) then
    if redis.call('SET', ARGV[4] .. id, '1', 'NX', 'PX', ARGV[2]) then
      count = count + 1
      claimed[#claimed + 1] = id
      claimed[#claimed + 1] = score
    end
  end
end
return claimed
"""


class SluiceWorker(Worker):
    def __init__(self, *args: Any, lease_s: float, grace_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_progress_timeout_s = lease_s
        self.grace_s = grace_s
        self.draining = asyncio.Event()
        self._poll_failures = 0
        self._claim: Any = None

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

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Claim due jobs in one round trip and start a task for each (arq: 4 per job)."""
        free = self.max_jobs - self.job_counter
        if free <= 0 or not job_ids:
            return
        if self._claim is None:
            self._claim = self.pool.register_script(CLAIM)
        lease_ms = int(self.in_progress_timeout_s * 1000)
        args = [now_ms(), lease_ms, free, ARQ_IN_PROGRESS_PREFIX, *job_ids]
        claimed = await self._claim(keys=[self.queue_name], args=args)
        for raw_id, score in zip(claimed[::2], claimed[1::2], strict=True):
            await self.sem.acquire()
            self.job_counter += 1
            job_id = raw_id.decode()
            task = self.loop.create_task(self.run_job(job_id, int(float(score))))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
            self._poll_failures = 0
        except (RedisError, OSError) as exc:
            self._poll_failures += 1
            delay = min(0.1 * 2**self._poll_failures, POLL_RETRY_MAX_S)
            log.warning("Redis unavailable, retrying", error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
