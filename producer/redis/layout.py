"""The fleet agrees on its shard count: the first client or worker of a namespace records
SLUICE_SHARDS in ``{ns}:layout``, and one started with another count stops, naming it (a
mismatch would put jobs in shards some workers never look at, and look for ids in the
wrong shard)."""

from __future__ import annotations

from producer.contract.errors import ConfigError
from producer.contract.keys import Keys
from producer.redis.typed import Redis


async def check_layout(redis: Redis, keys: Keys, *, record: bool = True) -> None:
    """Record this process's shard count if none is (``record``: a worker, or a sharded
    client; an unsharded client only reads), else check it is the one recorded."""
    if record:
        held = await redis.set(keys.layout, keys.shards, nx=True, get=True)
    else:
        held = await redis.get(keys.layout)
    if held is None:
        return
    recorded = held.decode() if isinstance(held, bytes) else str(held)
    if recorded != str(keys.shards):
        raise ConfigError(
            f"SLUICE_SHARDS is {keys.shards}, but namespace {keys.namespace!r} runs with "
            f"{recorded} shards ({keys.layout}): set SLUICE_SHARDS={recorded} (every client "
            "and worker of a namespace uses the same count)"
        )
