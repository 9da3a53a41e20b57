"""The worker process's loop: arq's Worker, driving units of Sluice jobs instead of arq jobs.

- Claiming by room: the worker claims units while the inputs it holds but has not fed to
  its stages, plus those waiting in the fetch queue, leave room in ``SLUICE_FETCH_CONCURRENCY``
  (at least one unit when it holds none, at most ``SLUICE_MAX_JOBS`` units held). So a
  backlog spreads over every live worker, a worker that starts later finds work, and what
  one worker holds is about what it will fetch next, not a hoard (`worker.lifecycle.claim`).
- Waking: an idle worker waits on the wake list the producer pushes to at enqueue (and the
  claim pushes to when it splits a job), so work starts at once rather than at the next
  poll; a busy one claims again as soon as room frees. ``SLUICE_POLL_DELAY_S`` is only the
  longest wait. Each poll also hears of cancelled jobs, and stops their units.
- Leases: one task renews every held unit's lease, check-and-extend (`worker.lifecycle.lease`).
- Draining: the first SIGTERM/SIGINT stops taking work and lets in-flight inputs finish for
  ``SLUICE_SHUTDOWN_GRACE_S``; unfinished units go back to the lease set for any worker.
  Webhook POSTs in flight then get what is left of the same grace (`grace_left_s`). A
  second signal, or the end of the grace period, stops at once.
- A stage task that dies (a bug) stops the worker: no more claims, not ready, its units
  handed back, exit status 1, so that its supervisor starts a new one.
- A lost Redis connection in the loop is logged and retried, not fatal.
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

from producer.contract.keys import Keys
from producer.redis.backoff import delay_s
from producer.redis.typed import typed
from worker.lifecycle.attempt import Attempt, Lifecycle, run_attempt
from worker.lifecycle.claim import Claimer, Unit
from worker.lifecycle.outcome import Outcome
from worker.stages.engine import describe_end

log = structlog.get_logger("sluice.worker")

POLL_RETRY_FIRST_S = 0.2
POLL_RETRY_MAX_S = 5.0


class SluiceWorker(Worker):
    def __init__(self, *args: Any, keys: Keys, name: str, grace_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keys, self.name, self.grace_s = keys, name, grace_s
        self.draining = asyncio.Event()
        # hand-out token -> its attempt: a unit handed to this worker again (cancelled and
        # retried, or taken back after a pause) while its stale attempt still winds down has
        # two attempts at once, and each ends alone
        self.attempts: dict[str, Attempt] = {}
        self.exit_code = 0
        self._life: Lifecycle | None = None
        self._claimer: Claimer | None = None
        self._poll_failures = 0
        self._more = False  # the last claim stopped at the room: more work may be due
        self._aborts_seen_ms = 0
        self._aborts_checked = 0.0
        self._background: list[asyncio.Task[None]] = []
        self._stop_by: float | None = None  # monotonic: when the grace from the signal ends
        self.stop_now = asyncio.Event()  # a second signal: nothing waits any longer

    @property
    def life(self) -> Lifecycle:
        assert self._life is not None, "the lifecycle starts in on_startup"
        return self._life

    def start_lifecycle(self, life: Lifecycle, claimer: Claimer) -> None:
        """Start claiming, lease renewal and batched endings (from on_startup: needs Redis)."""
        self._life, self._claimer = life, claimer
        life.endings.start()
        life.engine.on_stage_died = self._stage_died
        self._background.append(asyncio.create_task(life.leases.run(), name="sluice-leases"))

    async def stop_lifecycle(self) -> None:
        """After the last attempt ended: write the endings still waiting, stop renewing."""
        for task in self._background:
            task.cancel()
        self._background.clear()
        if self._life is not None:
            await self._life.endings.stop()

    async def main(self) -> None:
        """arq's main loop, with a wait for work in place of its fixed sleep."""
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        while True:
            await self._poll_iteration()
            await self._wait_for_work()

    def room(self) -> int:
        """Inputs this worker may claim now (0: none): what the fetch queue has room for, less
        the inputs of held units not fed to it yet; one unit's worth when it holds none."""
        if not self.allow_pick_jobs or len(self.attempts) >= self.max_jobs:
            return 0
        life = self.life
        room = life.config.fetch_concurrency - life.unfed - life.engine.fetch_queue.qsize()
        return max(room, 1) if not self.attempts else room

    def _claim_threshold(self) -> int:
        """Claim only for this much room (or when idle): claims come in batches, not one
        unit per input fed."""
        return 1 if not self.attempts else max(1, self.life.config.fetch_concurrency // 4)

    async def _wait_for_work(self) -> None:
        delay, life = self.poll_delay_s, self.life
        if self.allow_pick_jobs and not self._more and self.room() >= self._claim_threshold():
            # a producer's enqueue (or a split) pushes a token: an idle worker starts at once
            try:
                assert self._claimer is not None
                if await typed(self.pool).blpop(self._claimer.wakes, timeout=delay):
                    self._claimer.woken()
            except (RedisError, OSError):
                await asyncio.sleep(delay)  # the next poll reports it
            return
        # busy, or work waits for room: look again as soon as inputs are fed or units end
        # (asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that comes as
        # the event is set, and the worker would never stop)
        life.fed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await life.fed.wait()

    async def _poll_iteration(self) -> None:
        try:
            await self._poll_once()
            self._poll_failures = 0
        except (RedisError, OSError) as exc:
            self._poll_failures += 1
            delay = delay_s(self._poll_failures, POLL_RETRY_FIRST_S, POLL_RETRY_MAX_S)
            log.warning("Redis unavailable, retrying", error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)

    async def _poll_once(self) -> None:
        """Claim what there is room for; hear of cancelled jobs; beat arq's health key."""
        room, now = self.room(), time.monotonic()
        if room >= self._claim_threshold():
            await self._claim(room, self.max_jobs - len(self.attempts))
        elif self.attempts and now - self._aborts_checked >= self.poll_delay_s:
            await self._claim(0, 0)  # only to hear of cancelled jobs
        else:
            self._more = False
        await self.heart_beat()

    async def _claim(self, room: int, most: int) -> None:
        assert self._claimer is not None
        self._aborts_checked = sent = time.monotonic()
        holding = [attempt.unit.job_id for attempt in self.attempts.values()]
        claim = await self._claimer.claim(
            room, most, self._aborts_seen_ms, self.life.jobs.cached(), holding
        )
        self._more = claim.more
        self._aborts_seen_ms = claim.aborts_seen_ms
        if claim.aborted:
            cancelled = set(claim.aborted)
            for attempt in list(self.attempts.values()):
                if attempt.unit.job_id in cancelled:
                    log.info("job cancelled: stopping its unit", job_id=attempt.unit.job_id)
                    attempt.abort()
        for unit in claim.units:
            self._start(unit, sent)

    def _start(self, unit: Unit, claimed_at: float) -> None:
        attempt = Attempt(unit, claimed_at)
        self.life.unfed += unit.size  # now, not when its task first runs: the room shrinks
        task = self.loop.create_task(run_attempt(self.life, attempt), name=f"unit {unit.member}")
        attempt.task = task
        self.attempts[unit.token] = attempt
        self.tasks[unit.token] = task  # arq's own bookkeeping: its signal handler cancels them
        task.add_done_callback(lambda done: self._ended(unit, done))

    def _ended(self, unit: Unit, task: asyncio.Task[Outcome]) -> None:
        self.attempts.pop(unit.token, None)
        self.tasks.pop(unit.token, None)
        self.life.fed.set()
        if not task.cancelled() and task.exception() is not None:  # a bug: say so
            log.error("unit attempt raised", unit=unit.member, error=describe_end(task))

    def _stage_died(self, stage: str, error: str) -> None:
        """A stage task ended: this worker cannot finish its units. Hand them back and stop,
        with exit status 1, so that a supervisor starts a fresh one."""
        if self.exit_code:
            return
        log.critical("a stage stopped: handing units back and exiting", stage=stage, error=error)
        self.exit_code = 1
        self.allow_pick_jobs = False
        self.draining.set()
        super().handle_sig(Signals.SIGTERM)

    async def close(self) -> None:
        """arq's close, except that an unreachable Redis does not skip on_shutdown (which
        stops the pool and the stages): the unwritten endings' units are redone elsewhere."""
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

    def grace_left_s(self) -> float:
        """What is left of the shutdown grace (the whole of it if no signal came; none after
        a second signal): what the stops that still wait on work in flight may take."""
        if self._stop_by is None:
            return self.grace_s
        return max(0.0, self._stop_by - time.monotonic())

    def handle_sig(self, signum: Signals) -> None:
        now = time.monotonic()
        if self._stop_by is None:  # the first signal starts the grace; a second one ends it
            self._stop_by = now + self.grace_s
        else:
            self._stop_by = now
            self.stop_now.set()
        if self.draining.is_set() or not self.tasks:
            log.info("stopping now", signal=Signals(signum).name, units=len(self.tasks))
            super().handle_sig(signum)
            return
        log.info(
            "draining", signal=Signals(signum).name, units=len(self.tasks), grace_s=self.grace_s
        )
        self.allow_pick_jobs = False
        self.draining.set()
        self.loop.create_task(self._drain(signum))

    async def _drain(self, signum: Signals) -> None:
        pending = [t for t in self.tasks.values() if not t.done()]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), self.grace_s)
        super().handle_sig(signum)
