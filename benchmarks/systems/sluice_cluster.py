"""Sluice on a 3-primary Valkey Cluster: ``sluice-cluster`` (one worker) and
``sluice-cluster×2``, beside ``sluice`` on the one server, for the tiny workload (jobs/s and
Redis's cost per job).

Each run starts a cluster of its own (tests.support.cluster: three embedded valkey-server
processes, append-only file on, as the one-node server) before its workers, and stops it after;
the workers get ``SLUICE_REDIS_CLUSTER=true`` and one node as ``SLUICE_REDIS_URL``, and
``SLUICE_SHARDS`` keeps its default unless ``--sluice-env SLUICE_SHARDS=n`` says otherwise.
The servers' commands and CPU are summed over the three nodes, and their CPU is counted with
the other servers'. On a 2-core machine three servers and the workers share two cores: the
cluster cannot be faster there than one server, and the table says what it costs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from benchmarks.measure import total_counts
from benchmarks.systems.sluice_system import SluiceSystem
from producer import ClientSettings
from producer.redis.typed import Redis
from tests.support.cluster import Cluster, start_cluster
from tests.support.servers import valkey_binary

CLUSTER_SETTING = "redis_cluster"  # SLUICE_REDIS_CLUSTER, as ClientSettings names it
PROBES = 3  # stats() calls made to learn how many commands one poll sends


class SluiceCluster(SluiceSystem):
    name = "sluice-cluster"
    cluster: Cluster | None = None
    commands_per_poll = 1
    nodes: tuple[Redis, ...] = ()  # a plain client to each node, for its counts, once started

    def settings(self, metrics_port: int = 0) -> dict[str, str]:
        return {**super().settings(metrics_port), "SLUICE_REDIS_CLUSTER": "true"}

    def client_settings(self, **extra: Any) -> ClientSettings:
        if CLUSTER_SETTING not in ClientSettings.model_fields:
            raise RuntimeError(
                "this Sluice has no SLUICE_REDIS_CLUSTER setting: the cluster systems need "
                "Redis Cluster support (issue 16, item 4)"
            )
        return super().client_settings(**{CLUSTER_SETTING: True, **extra})

    def given(self) -> str:
        shards = self.ctx.sluice_env.get("SLUICE_SHARDS", "default")
        return f"3-primary cluster, SLUICE_SHARDS {shards}; {super().given()}"

    async def start(self) -> None:
        self.client_settings()  # no cluster support: say so before starting one
        await self.start_cluster()
        await super().start()
        if not self.workload.sluice_jobs:
            self.commands_per_poll = await self._commands_per_poll()

    async def start_cluster(self) -> None:
        """The run's own cluster, which the workers and the harness's client are given."""
        base = self.ctx.log_dir / f"{self.ctx.namespace}-cluster"
        self.cluster = await asyncio.to_thread(start_cluster, valkey_binary(), base)
        self.nodes = tuple(Redis.from_url(url) for url in self.cluster.urls)
        self.ctx = dataclasses.replace(self.ctx, redis_url=self.cluster.url)

    def servers(self) -> list[Redis]:
        return list(self.nodes)

    def infra_pids(self) -> list[int]:
        assert self.cluster is not None
        nodes = [node.process.pid for node in self.cluster.nodes if node.process]
        return [*self.ctx.infra_pids, *nodes]

    async def _registered(self) -> bool:
        """Every worker's heartbeat is in (counted through the client, wherever it lives)."""
        assert self.client is not None
        return (await self.client.stats()).workers >= self.workers

    async def _commands_per_poll(self) -> int:
        """The commands one `done` poll sends over the nodes (the fewest of a few tries:
        idle workers send some of their own meanwhile), so the run can leave them out."""
        assert self.client is not None
        seen = []
        for _ in range(PROBES):
            before = await total_counts(list(self.nodes))
            await self.client.stats()
            after = await total_counts(list(self.nodes))
            sent = sum(after.calls.values()) - sum(before.calls.values())
            seen.append(sent - len(self.nodes))  # each node counts the first INFO call
        return max(1, min(seen))

    async def done(self) -> int:
        """For one-input jobs: those enqueued that are neither waiting nor held, by the
        queue's figures over every shard (`Client.stats`)."""
        if self.workload.sluice_jobs:
            return await super().done()
        assert self.client is not None
        stats = await self.client.stats()
        self.poll_commands += self.commands_per_poll
        return self.enqueued - stats.ready - stats.deferred - stats.in_progress

    async def stop(self, graceful: bool) -> None:
        try:
            await super().stop(graceful)
        finally:
            await asyncio.gather(*(node.aclose() for node in self.nodes))
            if self.cluster is not None:
                await asyncio.to_thread(self.cluster.stop)


class SluiceClusterX2(SluiceCluster):
    name = "sluice-cluster×2"
    workers = 2
