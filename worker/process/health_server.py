"""The worker's HTTP server on SLUICE_METRICS_PORT: /metrics, /healthz and /readyz.

It runs as aiohttp.web inside the worker's own event loop rather than in prometheus_client's
server thread, on purpose: an answer from /healthz then proves the loop itself is alive (a
thread would answer while the loop is stuck), /readyz can ping Redis with the worker's async
client, and the queue figures are read from Redis at scrape time (cached a couple of seconds)
instead of by a timer, so an unscraped worker sends Redis nothing. A scrape costs the loop
about a millisecond.

It starts before the worker waits for Redis, so /healthz answers (and /readyz says 503)
while Redis is still down, and stops after the worker has shut down.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aiohttp import web
from prometheus_client.exposition import choose_encoder
from redis.exceptions import RedisError

from producer.contract.errors import SluiceError
from producer.contract.http_log import server_logger
from producer.contract.queue_stats import read_queue_stats
from producer.contract.version import sluice_version
from producer.redis.connection import connect
from producer.redis.typed import Redis
from worker.observe import metrics
from worker.pool.transform_pool import TransformPool
from worker.settings import WorkerConfig
from worker.stages.engine import Engine

QUEUE_CACHE_S = 2.0  # queue figures are re-read from Redis at most this often
REDIS_TIMEOUT_S = 2.0  # a Redis call made for a probe or a scrape gives up after this

log = structlog.get_logger("sluice.health")


class HealthServer:
    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.keys = config.keys
        self._redis: Redis | None = None
        self._runner: web.AppRunner | None = None
        self._engine: Engine | None = None
        self._pool: TransformPool | None = None
        self._draining: asyncio.Event | None = None
        self._queue_read_at = -QUEUE_CACHE_S

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            self._redis = connect(self.config, socket_timeout=REDIS_TIMEOUT_S)
        return self._redis

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, logger=server_logger("sluice.health")
        )
        await self._runner.setup()
        host, port = self.config.metrics_host, self.config.metrics_port
        try:
            await web.TCPSite(self._runner, host, port).start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise SluiceError(
                f"cannot serve metrics on {host}:{port} (SLUICE_METRICS_PORT): {exc}"
            ) from None
        log.info("metrics and health server", address=f"http://{host}:{port}")

    def attach(
        self, engine: Engine, pool: TransformPool, draining: asyncio.Event, name: str
    ) -> None:
        """The worker is up: report on its pipeline and pool from now on."""
        self._engine, self._pool, self._draining = engine, pool, draining
        queues = {
            "fetch": engine.fetch_queue,
            "transform": engine.transform_queue,
            "store": engine.store_queue,
        }
        for label, queue in queues.items():
            metrics.STAGE_QUEUE_ITEMS.labels(label).set_function(queue.qsize)
            metrics.STAGE_QUEUE_CAPACITY.labels(label).set(queue.maxsize)
        metrics.INFLIGHT_BYTES.set_function(lambda: engine.budget.used)
        metrics.INFLIGHT_LIMIT_BYTES.set(engine.budget.capacity)
        metrics.POOL_PROCESSES.set(pool.size)
        metrics.POOL_BUSY.set_function(lambda: pool.busy)
        metrics.UNITS_HELD.set_function(lambda: len(engine.progress.runs))
        metrics.WORKER.info(
            {"worker": name, "version": sluice_version(), "namespace": self.config.namespace}
        )

    def detach(self) -> None:
        """The worker is shutting down: not ready any more."""
        self._engine = self._pool = None

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def metrics(self, request: web.Request) -> web.Response:
        await self._refresh_queue()
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = encoder(metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def healthz(self, request: web.Request) -> web.Response:
        """200 while the loop answers (and the stages, once started, still run)."""
        if self._engine is not None and not self._engine.running:
            return _answer(503, {"status": "a pipeline stage stopped"})
        return _answer(200, {"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        """200 when Redis answers, the pool is up and the worker takes jobs; 503 otherwise."""
        problems: dict[str, Any] = {}
        if self._pool is None:
            problems["worker"] = "starting or stopping"
        elif not self._pool.running:
            problems["pool"] = "down"
        if self._draining is not None and self._draining.is_set():
            problems["worker"] = "draining"
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                await self.redis.ping()
        except (RedisError, OSError, TimeoutError, SluiceError) as exc:
            problems["redis"] = f"unreachable: {type(exc).__name__}"
        if problems:
            return _answer(503, {"status": "not ready", **problems})
        return _answer(200, {"status": "ok", "redis": "ok", "pool": "ok"})

    async def _refresh_queue(self) -> None:
        """Re-read the queue figures unless they are fresh; drop them if Redis fails."""
        if time.monotonic() - self._queue_read_at < QUEUE_CACHE_S:
            return
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                metrics.QUEUE.stats = await read_queue_stats(self.redis, self.keys)
            self._queue_read_at = time.monotonic()
        except (RedisError, OSError, TimeoutError, SluiceError) as exc:
            metrics.QUEUE.stats = None  # absent rather than stale
            log.warning("cannot read queue figures for metrics", error=str(exc))


def _answer(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status)
