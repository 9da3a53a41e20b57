"""`sluice-worker --check`: exit 0 when this worker's heartbeat is fresh and Redis answers.

"This worker" is the one named by SLUICE_WORKER_NAME when it is set (give each worker a
name when several run on one host). Otherwise it is the one worker whose heartbeat says it
runs on this host — in a container, the worker beside the check; with several on this host
and no name, the check fails and says to set SLUICE_WORKER_NAME. A heartbeat is fresh when
its last beat is at most HEALTHY_S old (`producer.contract.liveness`: three missed beats).

Meant for Docker's HEALTHCHECK and systemd or cron watchdogs; Kubernetes uses /healthz and
/readyz instead. Exit codes: 0 healthy, 1 not (the reason on stderr), 2 a bad setting.
"""

from __future__ import annotations

import asyncio
import socket
import sys

import redis

from producer.contract.errors import SluiceError
from producer.contract.keys import Keys
from producer.contract.liveness import HEALTHY_S
from producer.contract.wire import now_ms
from producer.redis.connection import connect
from producer.redis.typed import Redis
from worker.settings import WorkerConfig

TIMEOUT_S = 5.0


class Unhealthy(Exception):
    """The check failed; the message says why."""


def run_check(config: WorkerConfig) -> int:
    """Check, print the outcome, and return the exit code."""
    try:
        name, age_s = asyncio.run(_check(config))
    except Unhealthy as exc:
        print(f"sluice-worker --check: unhealthy: {exc}", file=sys.stderr)
        return 1
    print(f"sluice-worker --check: ok: {name} beat {age_s:.1f} s ago")
    return 0


async def _check(config: WorkerConfig) -> tuple[str, float]:
    try:
        client = connect(config, socket_timeout=TIMEOUT_S)
    except SluiceError as exc:
        raise Unhealthy(str(exc)) from None
    try:
        async with asyncio.timeout(TIMEOUT_S):
            return await _heartbeat_age(client, Keys(config.namespace), config.worker_name)
    except (redis.RedisError, OSError, TimeoutError) as exc:
        raise Unhealthy(f"Redis unreachable: {type(exc).__name__}: {exc}") from None
    finally:
        await client.aclose()


async def _heartbeat_age(client: Redis, keys: Keys, name: str | None) -> tuple[str, float]:
    """The worker's name and the age of its last beat, or Unhealthy."""
    now = now_ms()
    if name is not None:
        score = await client.zscore(keys.workers, name)
        if score is None:
            raise Unhealthy(f"no heartbeat from worker {name!r}")
        beats = {name: (now - float(score)) / 1000}
    else:
        beats = await _beats_from_this_host(client, keys, now)
    fresh = {n: age for n, age in beats.items() if age <= HEALTHY_S}
    if len(fresh) > 1:
        raise Unhealthy(
            f"{len(fresh)} workers beat from this host ({', '.join(sorted(fresh))}); "
            "set SLUICE_WORKER_NAME to say which one to check"
        )
    if not fresh:
        last, age_s = min(beats.items(), key=lambda beat: beat[1])
        raise Unhealthy(f"worker {last!r} last beat {age_s:.1f} s ago (stale past {HEALTHY_S:g} s)")
    [(found, age_s)] = fresh.items()
    return found, max(0.0, age_s)


async def _beats_from_this_host(client: Redis, keys: Keys, now: int) -> dict[str, float]:
    """Age of the last beat of each worker on this host, known by its details or default name.

    A restarted container keeps its host name, so its dead predecessor may be listed too
    (stale); the caller looks for the one fresh beat.
    """
    host = socket.gethostname()
    # the set and the hashes are shared with every worker and tool of the namespace: a name
    # that is not UTF-8 or a hash of another type is not this host's worker, nor a failure
    beats = {
        raw.decode(errors="replace"): float(score)
        for raw, score in await client.zrange(keys.workers, 0, -1, withscores=True)
    }
    async with client.pipeline(transaction=False) as pipe:
        for name in beats:
            pipe.hget(keys.worker(name), "host")
        hosts = await pipe.execute(raise_on_error=False)
    here = {
        name: (now - score) / 1000
        for (name, score), beat_host in zip(beats.items(), hosts, strict=True)
        if (isinstance(beat_host, bytes) and beat_host.decode(errors="replace") == host)
        or name.startswith(f"{host}:")
    }
    if not here:
        raise Unhealthy(f"no worker heartbeat from this host ({host})")
    return here
