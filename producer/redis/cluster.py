"""A Redis or Valkey Cluster client (SLUICE_REDIS_CLUSTER): redis-py's asyncio `RedisCluster`,
seeded with the node SLUICE_REDIS_URL names, learning the rest (and following slot moves and
failovers: MOVED, ASK, a lost node) itself.

Every Sluice script touches the keys of one shard only, and a shard's keys share a hash tag
(`producer.contract.keys`), so each call goes whole to the node that serves its slot.
`ClusterClient` takes arq's ``close(close_connection_pool=...)`` (the worker closes its
client as arq does), which redis-py's cluster client does not.
"""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio.cluster import RedisCluster

from producer.redis.typed import Redis


class ClusterClient(RedisCluster):
    """redis-py's cluster client, closed as arq closes its Redis."""

    async def close(self, close_connection_pool: bool | None = None) -> None:
        await self.aclose()


def cluster_client(url: str, options: dict[str, Any]) -> Redis:
    """A cluster client seeded by ``url`` (connects on first use), read as `Redis`: it runs
    the same commands, scripts and pipelines, each routed by its keys' slot."""
    options = {k: v for k, v in options.items() if k not in ("connection_class",)}
    if url.startswith("rediss://"):
        options["ssl"] = True
    return cast(Redis, ClusterClient.from_url(url, **options))
