"""Moving one hash slot from one primary to another in a test cluster, mid-test: a resharding
as valkey-cli does it (``SETSLOT IMPORTING/MIGRATING``, ``MIGRATE ... KEYS``, ``SETSLOT NODE``),
in three steps a test can hold apart: between `begin` and `finish` clients get ``ASK``
redirections for the keys already moved, and ``TRYAGAIN`` for a multi-key command whose keys
are split between the two nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from tests.support.cluster import Cluster, command
from tests.support.servers import Server


def key_slot(cluster: Cluster, key: str) -> int:
    """The slot a key hashes to, as the cluster computes it (``CLUSTER KEYSLOT``)."""
    return int(command(cluster.live()[0], "CLUSTER", "KEYSLOT", key))


@dataclass
class SlotMove:
    """One slot on its way from ``source`` to ``target``."""

    cluster: Cluster
    slot: int
    source: Server
    target: Server

    def begin(self) -> SlotMove:
        """Mark the slot importing on the target, migrating on the source (target first)."""
        source_id = self.cluster.node_id(self.source)
        target_id = self.cluster.node_id(self.target)
        command(self.target, "CLUSTER", "SETSLOT", self.slot, "IMPORTING", source_id)
        command(self.source, "CLUSTER", "SETSLOT", self.slot, "MIGRATING", target_id)
        return self

    def move_keys(self, batch: int = 100, timeout_ms: int = 5000) -> int:
        """Move every key of the slot still on the source; how many were moved."""
        moved = 0
        with redis.Redis(port=self.source.port, socket_timeout=10) as client:
            while keys := client.execute_command("CLUSTER", "GETKEYSINSLOT", self.slot, batch):
                client.execute_command(
                    "MIGRATE", "127.0.0.1", self.target.port, "", 0, timeout_ms, "KEYS", *keys
                )
                moved += len(keys)
        return moved

    def finish(self, timeout_s: float = 20.0) -> None:
        """Give the slot to the target on every primary (target first, as valkey-cli does)."""
        target_id = self.cluster.node_id(self.target)
        primaries = [self.target, self.source]
        primaries += [n for n in self.cluster.primary_nodes() if n not in primaries]
        for node in primaries:
            command(node, "CLUSTER", "SETSLOT", self.slot, "NODE", target_id)
        self.cluster.wait_settled(timeout_s)


def migrate_slot(cluster: Cluster, slot: int, target: Server) -> int:
    """Move ``slot`` to ``target`` in one go; how many keys went with it."""
    move = SlotMove(cluster, slot, cluster.owner(slot), target).begin()
    moved = move.move_keys()
    move.finish()
    return moved
