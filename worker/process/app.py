"""Builds the worker process: arq's Worker with JSON serialization, the one pool, the one
pipeline, the heartbeat and the job lifecycle."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import structlog
from arq.connections import ArqRedis
from arq.worker import func

from producer.contract.envelope import load_envelope
from producer.contract.keys import JOB_FUNCTION
from producer.contract.schedules import Schedule
from producer.contract.tracing import tracing_on
from producer.contract.wire import dumps
from producer.redis.connection import connect, connection_pool
from producer.redis.typed import typed
from worker.lifecycle.attempt import Lifecycle
from worker.lifecycle.claim import Claimer
from worker.lifecycle.deadlines import Deadlines
from worker.lifecycle.endings import Endings
from worker.lifecycle.job import Jobs
from worker.lifecycle.lease import Leases
from worker.observe.heartbeat import Heartbeat, worker_name
from worker.pool.transform_pool import TransformPool
from worker.process.arq_worker import SluiceWorker
from worker.process.health_server import HealthServer
from worker.process.persistence import warn_if_not_persistent
from worker.registry import REGISTRY
from worker.schedules.scheduler import Scheduler
from worker.settings import WorkerConfig
from worker.stages.engine import Engine
from worker.webhooks.loop import Webhooks

log = structlog.get_logger("sluice.worker")


def arq_redis(config: WorkerConfig) -> ArqRedis:
    if config.redis_cluster:  # arq's client is one server's; the worker uses only commands
        return cast(ArqRedis, connect(config))  # and scripts, which the cluster's routes
    return ArqRedis(
        connection_pool(config),
        job_serializer=dumps,
        job_deserializer=load_envelope,
        default_queue_name=config.keys.shard_keys(0).queue,
        expires_extra_ms=config.job_expires_s * 1000,
    )


def build_worker(
    config: WorkerConfig,
    health: HealthServer | None = None,
    schedules: Sequence[Schedule] = (),
) -> SluiceWorker:
    keys = config.keys
    name = worker_name(config.worker_name)
    stopping: list[Callable[[], Awaitable[None] | None]] = []  # in order, at shutdown

    async def startup(ctx: dict[str, Any]) -> None:
        redis = typed(worker.pool)
        pool = TransformPool(
            config.pool_size,
            config.pipelines,
            config.transform_timeout_s,
            config.pool_max_tasks,
            # room for every batch a process has queued, one more being written
            shared_bytes=(config.pool_inflight_per_process + 1) * config.transform_batch_bytes,
        )
        pool.start()
        await pool.warm_up()
        engine = Engine(config, pool, redis, keys)
        deadlines = Deadlines()
        engine.start({"deadlines": deadlines.run()})
        webhooks = Webhooks(redis, keys, config)
        await webhooks.start()  # before the heartbeat: a ready worker's default is written
        heartbeat = Heartbeat(
            redis,
            keys,
            name,
            config.pool_size,
            units=lambda: len(worker.attempts),
            queues=config.queues,
            rates=[rule.describe() for rule in config.rate_rules],
        )
        await heartbeat.start()
        scheduler = Scheduler(redis, keys, config, name, list(schedules))
        await scheduler.start()
        await warn_if_not_persistent(redis)
        life = Lifecycle(
            config=config,
            keys=keys,
            redis=redis,
            engine=engine,
            jobs=Jobs(config),
            leases=Leases(redis, keys, config.lease_s),
            endings=Endings(
                redis,
                keys,
                config.result_ttl_s,
                most_runs=config.max_tries,
                events_maxlen=config.events_maxlen,
            ),
            name=name,
            draining=worker.draining,
            deadlines=deadlines,
            # decided once: the provider is set up before start-up (SLUICE_PIPELINES, or
            # opentelemetry-instrument), and asking costs an environment read per unit
            tracing=tracing_on(),
        )
        claimer = Claimer(
            redis,
            keys,
            name,
            config.lease_s,
            config.unit_inputs,
            config.result_ttl_s,
            pipelines=REGISTRY.pipelines,
            queues=config.queues,
            events_maxlen=config.events_maxlen,
            max_inputs=config.max_inputs_per_job,
        )
        worker.start_lifecycle(life, claimer)
        stopping.extend(
            (
                scheduler.stop,
                heartbeat.stop,
                # what the jobs' drain left of the grace; a POST's timeout bounds each
                lambda: webhooks.stop(worker.grace_left_s(), worker.stop_now),
                worker.stop_lifecycle,
                engine.stop,
                pool.stop,
            )
        )
        if health is not None:
            health.attach(engine, pool, worker.draining, name)
        log.info(
            "worker ready",
            worker=name,
            pool_size=config.pool_size,
            queues=",".join(config.queues),
            unit_inputs=config.unit_inputs,
        )

    async def shutdown(ctx: dict[str, Any]) -> None:
        if health is not None:
            health.detach()
        for stop in stopping:
            result = stop()
            if result is not None:
                await result
        if stopping:
            log.info("worker stopped", worker=name)

    worker = SluiceWorker(
        keys=keys,
        name=name,
        grace_s=config.shutdown_grace_s,
        # arq needs a function to run: every Sluice job names this one, and the lifecycle
        # runs it (`worker.lifecycle`), never arq's run_job; so arq's settings for running
        # jobs (tries, timeouts, results, serializers) would do nothing and are not given
        functions=[func(_never_called, name=JOB_FUNCTION)],
        queue_name=keys.shard_keys(0).queue,
        redis_pool=arq_redis(config),
        on_startup=startup,
        on_shutdown=shutdown,
        max_jobs=config.max_jobs,
        poll_delay=config.poll_delay_s,
    )
    return worker


async def _never_called(ctx: dict[str, Any], **job: Any) -> None:
    raise RuntimeError("Sluice jobs run through worker.lifecycle, not arq's run_job")


class _NotForArqCli(dict[str, Any]):
    """What ``arq worker.process.app.WorkerSettings`` finds: arq's CLI cannot run Sluice's
    worker (it would skip the pool, the pipeline, the embedded server and the settings), so
    reading these settings says what to run instead, rather than a traceback."""

    def items(self) -> Any:  # arq's get_kwargs reads the settings with items()
        import sys

        print(
            "Sluice's worker is not run by arq's CLI: run `sluice-worker` (or `python -m "
            "worker`), configured with SLUICE_* variables",
            file=sys.stderr,
        )
        raise SystemExit(2)


WorkerSettings = _NotForArqCli()
