"""Firing one tick of one schedule: its job written as an enqueue writes it, by FIRE, which
enqueues it only if no other worker fired the tick first (producer.contract.schedule_scripts).

On a Redis Cluster the schedule's keys and its tick's job are in different slots: the tick is
checked (TICK_CHECK), its job enqueued in its shard (TICK_JOB), then the tick set and counted
(TICK_SET), each step in its own slot. The job id is the tick's, so two workers that both
get past the check write one job, and a worker stopped half-way leaves the tick to be fired
again harmlessly: the job is found there and counted once."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from producer.contract.keys import DEFAULT_QUEUE, Keys
from producer.contract.placement import chosen_fields, place
from producer.contract.schedule_scripts import FIRE, TICK_CHECK, TICK_JOB, TICK_SET, Fired
from producer.contract.schedules import Schedule, tick_job_id
from producer.contract.status import Field
from producer.contract.wire import encode_job
from producer.redis.failover import ReplicaWait
from producer.redis.scripts import run_script
from producer.redis.typed import Redis
from producer.redis.wake import push_wake
from worker.settings import WorkerConfig

SHA = {s: hashlib.sha1(s.encode()).hexdigest() for s in (FIRE, TICK_CHECK, TICK_JOB, TICK_SET)}


@dataclass(frozen=True, slots=True)
class Tick:
    """One tick's FIRE: its job id and queue, the schedule's keys, the job's, the arguments."""

    job_id: str
    queue: str
    own: list[str]
    job: list[str]
    args: list[Any]


class Firing:
    """Fires ticks of the schedules of one worker."""

    def __init__(self, redis: Redis, keys: Keys, config: WorkerConfig) -> None:
        self.redis, self.keys, self.config = redis, keys, config
        # as an enqueue does: a tick's job counts as written once the replicas confirm it
        self.wait = ReplicaWait.of(config, keys)

    async def fire(
        self, schedule: Schedule, digest: str, expected_ms: int, tick_ms: int, next_ms: int
    ) -> tuple[Fired, str]:
        """Fire ``tick_ms`` if the schedule's next tick is still ``expected_ms``, setting it to
        ``next_ms``: what FIRE did, and the tick's job id."""
        tick = self.tick(schedule, digest, expected_ms, tick_ms, next_ms)
        if self.keys.tagged:
            fired = await self._in_steps(tick.own, tick.job, tick.args)
        else:
            fired = Fired(int(await self._run(FIRE, [*tick.own, *tick.job], tick.args)))
        if fired == Fired.ENQUEUED and self.keys.sharded:  # FIRE woke its shard's list only
            await push_wake(self.redis, [self.keys.fleet_wake_for(tick.queue)], 1)
        return fired, tick.job_id

    def tick(
        self, schedule: Schedule, digest: str, expected_ms: int, tick_ms: int, next_ms: int
    ) -> Tick:
        """FIRE's keys and arguments for one tick."""
        spec = schedule.job_spec()
        job_id = tick_job_id(self.keys.namespace, schedule.name, tick_ms)
        k = self.keys.for_job(job_id)
        job = [
            k.named_queue(spec.queue),
            k.arq_job(job_id),
            k.arq_result(job_id),
            k.job(job_id),
            k.wake_for(spec.queue),
            k.shard_queues,
            k.events,
        ]
        # the job is enqueued at its tick (its place in the queue, its enqueued_at): one
        # fired a little late still goes ahead of work enqueued after its tick
        expires_s, cap, shards = self.config.job_expires_s, self.config.max_queued_jobs, k.shards
        args = [
            schedule.name,
            expected_ms,
            tick_ms,
            next_ms,
            digest,
            job_id,
            encode_job(spec, tick_ms),
            place(tick_ms, spec.priority),
            expires_s * 1000,
            tick_ms / 1000,
            spec.pipeline,
            len(schedule.inputs),
            expires_s,
            k.script_wake_tokens,  # none on a sharded layout: pushed after, above
            "" if spec.queue == DEFAULT_QUEUE else spec.queue,
            cap if shards == 1 else -(-cap // shards),  # a queue's cap, shared by its shards
            self.config.events_maxlen,
            *chosen_fields(spec, tick_ms, False),
            Field.SCHEDULE,
            schedule.name,
        ]
        own = [self.keys.schedules, self.keys.schedule(schedule.name)]
        return Tick(job_id, spec.queue, own, job, args)

    async def _in_steps(self, own: list[str], job: list[str], args: Sequence[Any]) -> Fired:
        """FIRE's three steps on a cluster, each in one slot (TICK_CHECK, TICK_JOB,
        TICK_SET)."""
        mine = Fired(int(await self._run(TICK_CHECK, own, args[:5])))
        if mine != Fired.ENQUEUED:
            return mine
        outcome, why = await self._run(TICK_JOB, job, args)
        return Fired(int(await self._run(TICK_SET, own, [*args[:6], outcome, why])))

    async def _run(self, script: str, keys: list[str], args: Sequence[Any]) -> Any:
        return await run_script(self.redis, SHA[script], script, keys, args, self.wait)
