"""At start-up, say plainly what a server that persists nothing can lose.

Without an append-only file or RDB snapshots, a restart of Redis empties it: queued jobs,
records stored so far and the status of every job are gone (the jobs then read
``not_found``; no job is ever called complete with records missing, but nothing brings the
lost ones back). Managed servers often refuse CONFIG: then INFO says what it can.
"""

from __future__ import annotations

import structlog
from redis.exceptions import RedisError, ResponseError

from producer.redis.typed import Redis

log = structlog.get_logger("sluice.worker")

LOST = (
    "Redis persists nothing (no append-only file, no RDB snapshots): if it restarts, every "
    "queued job, every stored record and every job's status is lost; run it with "
    "appendonly yes"
)


async def persists(redis: Redis) -> bool | None:
    """Whether the server writes its data to disk (None: it will not say)."""
    try:
        aof = await redis.config_get("appendonly")
        save = await redis.config_get("save")
    except ResponseError:  # CONFIG renamed or refused (managed servers): ask INFO
        try:
            info = await redis.info("persistence")
        except RedisError:
            return None
        return bool(info.get("aof_enabled")) or info.get("rdb_saves", 0) > 0 or None
    return _value(aof, "appendonly") == "yes" or bool(_value(save, "save").strip())


def _value(reply: dict[str | bytes, str | bytes], name: str) -> str:
    for key, value in reply.items():
        if (key.decode() if isinstance(key, bytes) else key) == name:
            return value.decode() if isinstance(value, bytes) else value
    return ""


async def warn_if_not_persistent(redis: Redis) -> None:
    try:
        persistent = await persists(redis)
    except RedisError as exc:
        log.debug("cannot tell whether Redis persists its data", error=str(exc))
        return
    if persistent is False:
        log.warning(LOST)
