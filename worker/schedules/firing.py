"""Firing one tick of one schedule: its job written as an enqueue writes it, by FIRE, which
enqueues it only if no other worker fired the tick first (producer.contract.schedule_scripts)."""

from __future__ import annotations

import hashlib

from producer.contract.keys import DEFAULT_QUEUE, WAKE_TOKENS, Keys
from producer.contract.placement import chosen_fields, place
from producer.contract.schedule_scripts import FIRE, Fired
from producer.contract.schedules import Schedule, tick_job_id
from producer.contract.status import Field
from producer.contract.wire import encode_job
from producer.redis.failover import ReplicaWait
from producer.redis.scripts import run_script
from producer.redis.typed import Redis
from producer.redis.wake import push_wake
from worker.settings import WorkerConfig

FIRE_SHA = hashlib.sha1(FIRE.encode()).hexdigest()


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
        spec = schedule.job_spec()
        job_id = tick_job_id(self.keys.namespace, schedule.name, tick_ms)
        k = self.keys.for_job(job_id)  # sharded: one server only (refused on a cluster)
        keys = [
            self.keys.schedules,
            self.keys.schedule(schedule.name),
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
        expires_s = self.config.job_expires_s
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
            WAKE_TOKENS,
            "" if spec.queue == DEFAULT_QUEUE else spec.queue,
            self.config.max_queued_jobs,
            self.config.events_maxlen,
            *chosen_fields(spec, tick_ms, False),
            Field.SCHEDULE,
            schedule.name,
        ]
        fired = Fired(int(await run_script(self.redis, FIRE_SHA, FIRE, keys, args, self.wait)))
        if fired == Fired.ENQUEUED and self.keys.sharded:  # FIRE woke its shard's list only
            await push_wake(self.redis, [self.keys.fleet_wake_for(spec.queue)], 1)
        return fired, job_id
