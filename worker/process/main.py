"""`sluice-worker` / `python -m worker`: check the settings, find Redis, run the arq worker."""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
import time

import redis
import structlog
from redis.exceptions import AuthenticationError, RedisError

from producer.contract.errors import ConfigError, ServerUnavailable, SluiceError
from producer.contract.keys import Keys
from producer.contract.liveness import live_since_ms
from producer.contract.wire import now_ms
from producer.redis.backoff import Backoff
from producer.redis.connection import connect, resolve_url, server_label
from producer.redis.layout import check_layout
from producer.redis.typed import Redis
from worker.observe.logging import configure_logging
from worker.process.app import build_worker
from worker.process.check import run_check
from worker.process.embedded import EmbeddedServer
from worker.process.health_server import HealthServer
from worker.registry import REGISTRY, check_rated_pipelines, load_modules
from worker.schedules.definitions import load_schedules
from worker.settings import WorkerConfig, load_worker_config

log = structlog.get_logger("sluice.worker")

REDIS_WAIT_MAX_S = 10.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sluice-worker",
        description="Run a Sluice worker; settings come from SLUICE_* variables and .env.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 0 if this worker's heartbeat is fresh and Redis answers, 1 if not "
        "(this worker: SLUICE_WORKER_NAME, else the one worker on this host)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_worker_config()
        configure_logging(config)
        if args.check:
            return run_check(config)
        load_modules(config.pipelines)
        check_rated_pipelines(config)
        schedules = load_schedules(config, REGISTRY.pipelines)
    except ConfigError as exc:
        print(f"sluice-worker: {exc}", file=sys.stderr)
        return 2
    embedded = EmbeddedServer(config.data_dir, config.embedded_port)
    health: HealthServer | None = None
    status = 0
    loop = new_loop()
    try:
        if config.embedded:
            url = embedded.start()
            log.info(
                "embedded server", url=url, data_dir=str(config.data_dir), owner=embedded.owner
            )
        if config.metrics_port:
            health = HealthServer(config)
            loop.run_until_complete(health.start())
        loop.run_until_complete(wait_for_redis(config))
        worker = build_worker(config, health, schedules)
        worker.run()
        status = worker.exit_code  # 1: a stage died; its units were handed back
    except SluiceError as exc:
        print(f"sluice-worker: {exc}", file=sys.stderr)
        return 1
    finally:
        if health is not None:
            loop.run_until_complete(health.stop())
        if config.embedded and not other_workers_alive(config):
            embedded.stop()
    return status


def other_workers_alive(config: WorkerConfig) -> bool:
    """Whether any other worker still beats on the embedded server (then it must keep
    running)."""
    try:
        client = redis.Redis.from_url(resolve_url(config), socket_connect_timeout=1)
        try:
            recent = live_since_ms(now_ms())
            return bool(client.zcount(Keys(config.namespace).workers, recent, "+inf"))
        finally:
            client.close()
    except (redis.RedisError, OSError, SluiceError):
        return False


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where available (a faster loop for the fetch and store stages), else asyncio's."""
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


async def wait_for_redis(config: WorkerConfig) -> None:
    """Block until Redis answers, retrying with backoff and saying so, instead of crashing."""
    url = server_label(config)
    backoff, start = Backoff(None, first_s=0.2, max_s=REDIS_WAIT_MAX_S), time.monotonic()
    client: Redis = connect(config)
    try:
        while True:
            try:
                await client.ping()
                await check_layout(client, config.keys)
                await _warn_if_few_replicas(client, config)
                return
            except AuthenticationError:
                raise ServerUnavailable(f"Redis at {url} refused the credentials") from None
            except (RedisError, OSError) as exc:
                if _is_tls_verify_error(exc):
                    raise ServerUnavailable(
                        f"Redis at {url} refused: its TLS certificate did not verify ({exc}); "
                        "check SLUICE_REDIS_CA_FILE and the host name"
                    ) from None
                log.warning(
                    "waiting for Redis",
                    url=url,
                    error=str(exc),
                    waited_s=round(time.monotonic() - start, 1),
                )
                await backoff.pause()
    finally:
        await client.aclose()


async def _warn_if_few_replicas(client: Redis, config: WorkerConfig) -> None:
    """Say so at start when the primary has fewer replicas than stores will wait for: until
    they are there, no batch of records counts as stored."""
    if not config.redis_wait_replicas:
        return
    try:
        replicas = int((await client.info("replication")).get("connected_slaves", 0))
    except (RedisError, OSError, ValueError):  # a managed service may not answer INFO
        return
    if replicas < config.redis_wait_replicas:
        log.warning(
            "fewer replicas than SLUICE_REDIS_WAIT_REPLICAS: stores wait until there are enough",
            replicas=replicas,
            wait_replicas=config.redis_wait_replicas,
        )


def _is_tls_verify_error(exc: BaseException) -> bool:
    """A certificate problem is a configuration error: retrying will not fix it."""
    return "CERTIFICATE_VERIFY_FAILED" in str(exc) or isinstance(
        exc.__cause__ or exc.__context__, ssl.SSLCertVerificationError
    )
