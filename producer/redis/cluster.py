"""A Redis or Valkey Cluster client (SLUICE_REDIS_CLUSTER): redis-py's asyncio `RedisCluster`,
seeded with the node SLUICE_REDIS_URL names, learning the rest (and following slot moves and
failovers: MOVED, ASK, a lost node) itself.

Every Sluice script touches the keys of one shard only, and a shard's keys share a hash tag
(`producer.contract.keys`), so each call goes whole to the node that serves its slot.
`ClusterClient` takes arq's ``close(close_connection_pool=...)`` (the worker closes its
client as arq does), which redis-py's cluster client does not. And it runs a script a node
lacks with EVAL: a replica promoted by a failover (or a node that gained a slot) has an
empty script cache, and redis-py's cluster client loads a script on the primaries it knew,
so EVALSHA after SCRIPT LOAD would keep failing there (found by tests/cluster/test_failover).
"""

from __future__ import annotations

import hashlib
from typing import Any, cast

from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from producer.redis.typed import Redis


class ClusterClient(RedisCluster):
    """redis-py's cluster client, closed as arq closes its Redis; EVALSHA falls back to EVAL
    (which also caches the script on that node) for a script it has seen."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sources: dict[str, str] = {}  # sha1 -> source of the scripts seen

    def _seen(self, script: str | bytes) -> None:
        source = script.decode() if isinstance(script, bytes) else script
        self._sources[hashlib.sha1(source.encode()).hexdigest()] = source

    def register_script(self, script: str | bytes) -> AsyncScript:  # type: ignore[override]
        self._seen(script)
        return AsyncScript(self, script)  # type: ignore[arg-type]

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        try:
            return await super().evalsha(sha, numkeys, *keys_and_args)  # type: ignore[misc]
        except NoScriptError:
            source = self._sources.get(sha)
            if source is None:
                raise
            return await self.eval(source, numkeys, *keys_and_args)  # type: ignore[misc]

    async def close(self, close_connection_pool: bool | None = None) -> None:
        await self.aclose()


def cluster_client(url: str, options: dict[str, Any]) -> Redis:
    """A cluster client seeded by ``url`` (connects on first use), read as `Redis`: it runs
    the same commands, scripts and pipelines, each routed by its keys' slot."""
    options = {k: v for k, v in options.items() if k not in ("connection_class",)}
    if url.startswith("rediss://"):
        options["ssl"] = True
    return cast(Redis, ClusterClient.from_url(url, **options))
