"""Builds the arq worker: JSON serialization, the one pool, the one pipeline, the heartbeat."""

from __future__ import annotations

from typing import Any

import structlog
from arq.connections import ArqRedis
from arq.worker import func

from producer.connection import connection_pool
from producer.keys import JOB_FUNCTION, Keys
from producer.tracing import tracing_on
from producer.wire import dumps
from worker.arq_worker import SluiceWorker
from worker.envelope import load_envelope
from worker.health_server import HealthServer
from worker.heartbeat import Heartbeat, worker_name
from worker.instrument import counted
from worker.job import WorkerState, run_job
from worker.pool import TransformPool
from worker.settings import WorkerConfig
from worker.stages.engine import Engine

log = structlog.get_logger("sluice.worker")


def arq_redis(config: WorkerConfig) -> ArqRedis:
    return ArqRedis(
        connection_pool(config),
        job_serializer=dumps,
        job_deserializer=load_envelope,
        default_queue_name=Keys(config.namespace).queue,
        expires_extra_ms=config.job_expires_s * 1000,
    )


def build_worker(config: WorkerConfig, health: HealthServer | None = None) -> SluiceWorker:
    keys = Keys(config.namespace)
    name = worker_name(config.worker_name)

    async def startup(ctx: dict[str, Any]) -> None:
        pool = TransformPool(
            config.pool_size, config.pipelines, config.transform_timeout_s, config.pool_max_tasks,
            # room for every batch a process has queued, one more being written
            shared_bytes=(config.pool_inflight_per_process + 1) * config.transform_batch_bytes,
        )  # fmt: skip
        pool.start()
        await pool.warm_up()
        engine = Engine(config, pool, ctx["redis"], keys)
        engine.start()
        heartbeat = Heartbeat(
            ctx["redis"], keys, name, config.pool_size, jobs=lambda: len(engine.progress.runs)
        )
        await heartbeat.start()
        await worker.start_lifecycle()
        # decided once: the provider is set up before start-up (SLUICE_PIPELINES, or
        # opentelemetry-instrument), and asking costs an environment read per job
        tracing = tracing_on()
        ctx["sluice"] = WorkerState(config, keys, engine, name, worker.draining, tracing)
        ctx["sluice_pool"], ctx["sluice_heartbeat"] = pool, heartbeat
        if health is not None:
            health.attach(engine, pool, worker.draining, name)
        log.info("worker ready", worker=name, pool_size=config.pool_size, queue=keys.queue)

    async def shutdown(ctx: dict[str, Any]) -> None:
        if health is not None:
            health.detach()
        if "sluice" not in ctx:
            return
        await ctx["sluice_heartbeat"].stop()
        await worker.stop_lifecycle()
        await ctx["sluice"].engine.stop()
        ctx["sluice_pool"].stop()
        log.info("worker stopped", worker=name)

    worker = SluiceWorker(
        keys=keys,
        name=name,
        lease_s=config.lease_s,
        grace_s=config.shutdown_grace_s,
        functions=[func(counted(run_job), name=JOB_FUNCTION)],
        queue_name=keys.queue,
        redis_pool=arq_redis(config),
        on_startup=startup,
        on_shutdown=shutdown,
        max_jobs=config.max_jobs,
        job_timeout=config.job_timeout_s,  # enforced by the job function (worker.job)
        result_ttl_s=config.result_ttl_s,
        poll_delay=config.poll_delay_s,
        max_tries=config.max_tries,
        job_serializer=dumps,
        job_deserializer=load_envelope,
        expires_extra_ms=config.job_expires_s * 1000,
        log_results=False,
        allow_abort_jobs=True,  # `sluice cancel` aborts running jobs through arq
    )
    return worker
