"""The loop that fires a worker's schedules: it publishes their definitions at start, then
about once a second reads their next ticks and Redis's clock, and fires each tick due
(`worker.schedules.firing`). Any number of workers run it side by side: FIRE's
compare-and-set lets one of them enqueue each tick, and while one lives none is skipped.

Every BEAT_INTERVAL_S it also marks its schedules as defined by a live worker, and those
whose published definition is its own as held (`HOLD`); it publishes its own in place of a
definition no live worker has held for LIVE_S (every worker holding it stopped), and forgets
the schedules no live worker has defined for FORGOTTEN_S (removed from every worker's
settings).
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import structlog
from redis.exceptions import RedisError

from producer.contract.keys import Keys
from producer.contract.liveness import BEAT_INTERVAL_S, FORGOTTEN_S, LIVE_S
from producer.contract.schedule_scripts import FORGET, HOLD, LOOK, PUBLISH, Fired, ScheduleField
from producer.contract.schedules import Schedule
from producer.contract.ticks import due_ticks_ms, next_tick_ms
from producer.contract.wire import read_number
from producer.redis.scripts import run_script
from producer.redis.typed import Redis
from worker.observe import metrics
from worker.schedules.firing import Firing
from worker.settings import WorkerConfig

log = structlog.get_logger("sluice.schedules")

LOOK_S = 1.0  # longest pause between two looks at the next ticks
SOONEST_S = 0.01  # shortest: a tick due in a moment is fired at once, not a second late
_SHA = {s: hashlib.sha1(s.encode()).hexdigest() for s in (PUBLISH, HOLD, FORGET, LOOK)}
# a tick's outcome as sluice_schedule_ticks_total labels it (`worker.observe.metrics`)
_TICK_LABELS = {
    Fired.ENQUEUED: "fired",
    Fired.EXISTS: "exists",
    Fired.QUEUE_FULL: "queue_full",
    Fired.TOO_MANY_QUEUES: "too_many_queues",
}


class Scheduler:
    """Fires one worker's schedules."""

    # liveness (`producer.contract.liveness`): class attributes, so a test shortens them
    beat_s: float = BEAT_INTERVAL_S
    live_s: float = LIVE_S

    def __init__(
        self, redis: Redis, keys: Keys, config: WorkerConfig, name: str, schedules: list[Schedule]
    ) -> None:
        self.redis, self.keys, self.name = redis, keys, name
        self.schedules = {s.name: s for s in schedules}
        self.digests = {s.name: s.digest() for s in schedules}
        self.outranked: set[str] = set()  # another worker's definition was published since
        self.firing = Firing(redis, keys, config)
        for schedule_name in self.schedules:  # present at 0, so rate() sees the first tick
            for outcome in _TICK_LABELS.values():
                metrics.SCHEDULE_TICKS.labels(schedule_name, outcome)
        self._task: asyncio.Task[None] | None = None
        self._beat_at = 0.0

    async def start(self) -> None:
        """Publish the definitions, then fire their ticks until stopped."""
        if not self.schedules:
            return
        await self.publish()
        self._task = asyncio.create_task(self._loop(), name="sluice-schedules")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def publish(self) -> None:
        """Publish this worker's definitions (`PUBLISH`: the last started wins)."""
        now = await self._now_ms()
        for schedule in self.schedules.values():
            await self._publish(schedule, now)

    async def _loop(self) -> None:
        while True:
            try:
                pause_s = await self.step()
            except RedisError as exc:
                log.warning("schedules: Redis failed, trying again", error=str(exc))
                pause_s = LOOK_S
            except Exception:  # a bug must not stop every schedule of this worker for good
                log.exception("schedules: a step failed, trying again")
                pause_s = LOOK_S
            await asyncio.sleep(pause_s)

    async def step(self) -> float:
        """Fire every tick due; the seconds until the next look."""
        names = list(self.schedules)
        if time.monotonic() >= self._beat_at:  # first: a take-over sets the next tick
            await self._beat(names, await self._now_ms())
        keys = [self.keys.schedules]  # one call: the clock of the node FIRE runs on
        now, scores = await run_script(self.redis, _SHA[LOOK], LOOK, keys, names)
        soonest = now + int(LOOK_S * 1000)
        for name, score in zip(names, scores, strict=True):
            schedule = self.schedules[name]
            if not score:  # forgotten, or deleted by hand: published afresh
                self.outranked.discard(name)
                await self._publish(schedule, now)
                continue
            if name in self.outranked:
                continue
            next_ms = await self._fire_due(schedule, int(float(score)), now)
            soonest = min(soonest, next_ms)
        pause_s: float = max(SOONEST_S, (soonest - now) / 1000)
        return pause_s

    async def _fire_due(self, schedule: Schedule, due_ms: int, now: int) -> int:
        """Fire the ticks of ``schedule`` due by ``now``; its next tick as far as known."""
        ticks = due_ticks_ms(schedule, due_ms, now)
        if not ticks:
            return due_ms
        expected, following = due_ms, next_tick_ms(schedule, now)
        for n, tick in enumerate(ticks):
            next_ms = ticks[n + 1] if n + 1 < len(ticks) else following
            outcome, job_id = await self.firing.fire(
                schedule, self.digests[schedule.name], expected, tick, next_ms
            )
            if outcome is Fired.NOT_MINE:
                break
            if outcome is Fired.REDEFINED:
                self._stand_aside(schedule.name)
                break
            skipped = outcome is not Fired.ENQUEUED
            event = "schedule tick skipped" if skipped else "schedule fired"
            (log.warning if skipped else log.info)(
                event, schedule=schedule.name, job_id=job_id, tick_ms=tick, outcome=outcome.name
            )
            metrics.SCHEDULE_TICKS.labels(schedule.name, _TICK_LABELS[outcome]).inc()
            expected = next_ms
        return following

    async def _publish(self, schedule: Schedule, now: int) -> None:
        keys = [self.keys.schedules, self.keys.schedule(schedule.name)]
        args = [
            schedule.name,
            schedule.definition(),
            self.digests[schedule.name],
            next_tick_ms(schedule, now),
            self.name,
            now,
        ]
        outcome = await run_script(self.redis, _SHA[PUBLISH], PUBLISH, keys, args)
        if int(outcome) == 2:
            log.warning(
                "schedule: this worker's definition replaced another one (the last started "
                "wins; workers with the other stop firing it)",
                schedule=schedule.name,
            )

    def _stand_aside(self, name: str) -> None:
        if name not in self.outranked:
            self.outranked.add(name)
            log.warning(
                "schedule: another worker published another definition of it since this "
                "one started; this worker leaves it to that one (the last started wins)",
                schedule=name,
            )

    async def _beat(self, names: list[str], now: int) -> None:
        """Mark these schedules as defined by a live worker, and held where the published
        definition is this worker's; take over those no live worker holds; forget the
        long-undefined."""
        self._beat_at = time.monotonic() + self.beat_s
        fields = (ScheduleField.HELD_AT, ScheduleField.PUBLISHED_AT, ScheduleField.LAST_TICK)
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hmget(self.keys.schedule(name), list(fields))
            read = await pipe.execute()
        for name, values in zip(names, read, strict=True):
            await self._hold(self.schedules[name], now, max(int(read_number(v)) for v in values))
        forget = [self.keys.schedules], [self.keys.schedule(""), now - FORGOTTEN_S * 1000]
        gone = await run_script(self.redis, _SHA[FORGET], FORGET, *forget)
        if gone:
            log.info("schedules forgotten: no live worker defines them", names=list(gone))

    async def _hold(self, schedule: Schedule, now: int, last_ms: int) -> None:
        """`HOLD` one schedule: ``last_ms`` is when its published definition was last held
        or fired, so a take-over resumes at the first of this worker's ticks after it (those
        since are missed: the schedule's ``missed`` rule decides)."""
        name, digest = schedule.name, self.digests[schedule.name]
        keys = [self.keys.schedules, self.keys.schedule(name)]
        oldest = now - int(self.live_s * 1000)
        resume = next_tick_ms(schedule, last_ms)
        args = [name, digest, now, oldest, schedule.definition(), self.name, resume]
        outcome, published = await run_script(self.redis, _SHA[HOLD], HOLD, keys, args)
        if int(outcome) == 0:
            self._stand_aside(name)
            return
        if int(outcome) > 0:  # its own is published (by this worker or one of the same)
            self.outranked.discard(name)
        if int(outcome) == 2:
            log.warning(
                "schedule: no live worker holds its published definition; this worker "
                "publishes its own and fires it",
                schedule=name,
                published=bytes(published).decode(),
                own=digest,
            )

    async def _now_ms(self) -> int:
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000
