"""A real Valkey Cluster for tests: three primaries (and, if asked, a replica each) from the
embedded binary on loopback ports, slots assigned by the test itself, no valkey-cli.

The cluster is "settled" when every live node says ``cluster_state:ok`` and every node names
the same live primary for every slot range; `Cluster.wait_settled` polls for that with a
deadline. Node control for fault tests (stop, kill, restart, failover) is here; moving a slot
between primaries is in tests.support.cluster_slots.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tests.support.servers import Server, flags, free_port

SLOTS = 16384
NODE_TIMEOUT_MS = 1000

# one node's view of who serves what: (first slot, last slot, primary's port), sorted
SlotMap = tuple[tuple[int, int, int], ...]


def admin(server: Server) -> redis.Redis:
    """A plain (non-cluster) client to one node, replies decoded, for CLUSTER commands."""
    return redis.Redis(port=server.port, decode_responses=True, socket_timeout=2)


def command(server: Server, *args: Any) -> Any:
    with admin(server) as client:
        return client.execute_command(*args)


def slot_ranges(primaries: int) -> list[tuple[int, int]]:
    """The slots split into ``primaries`` contiguous ranges, as valkey-cli splits them."""
    bounds = [round(i * SLOTS / primaries) for i in range(primaries + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(primaries)]


def parse_nodes(text: str) -> tuple[dict[str, int], SlotMap]:
    """CLUSTER NODES as {node id: port} of the nodes it thinks up (not flagged ``fail``), and
    the slot ranges of the primaries among them."""
    ports: dict[str, int] = {}
    ranges: list[tuple[int, int, int]] = []
    for line in text.strip().splitlines():
        node_id, address, flag_text, *_rest = line.split()
        node_flags = flag_text.split(",")
        if "fail" in node_flags:
            continue
        port = int(address.split("@")[0].rsplit(":", 1)[1])
        ports[node_id] = port
        if "master" not in node_flags:
            continue
        for part in line.split()[8:]:
            if part.startswith("["):  # "[slot->-id]": a migration under way, not ownership
                continue
            first, _, last = part.partition("-")
            ranges.append((int(first), int(last or first), port))
    return ports, tuple(sorted(ranges))


@dataclass
class Cluster:
    """``primaries`` Valkey nodes sharing the 16384 slots, ``replicas`` more per primary."""

    binary: str
    base_dir: Path
    primaries: int = 3
    replicas: int = 0
    node_timeout_ms: int = NODE_TIMEOUT_MS
    nodes: list[Server] = field(default_factory=list)
    bus_ports: dict[int, int] = field(default_factory=dict)  # node port -> cluster bus port

    @property
    def url(self) -> str:
        """A seed node: any node will do, clients learn the rest from it."""
        return self.live()[0].url

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.live()]

    def live(self) -> list[Server]:
        return [node for node in self.nodes if node.process and node.process.poll() is None]

    def start(self, timeout_s: float = 20.0) -> Cluster:
        try:
            for i in range(self.primaries * (1 + self.replicas)):
                self._node(i).start(timeout_s)
            self._form(timeout_s)
        except BaseException:
            self.stop()  # no node left running when the cluster cannot start
            raise
        return self

    def _node(self, i: int) -> Server:
        args = flags(
            {
                "cluster-enabled": "yes",
                "cluster-config-file": "nodes.conf",
                "cluster-node-timeout": str(self.node_timeout_ms),
                # its own free port: the default, port + 10000, may be taken or above 65535
                "cluster-port": str(bus_port := free_port()),
                # a replica may take over at once, however stale (tests kill primaries)
                "cluster-replica-validity-factor": "0",
                "repl-diskless-sync-delay": "0",
                # a primary told to stop does not wait for replicas stopped before it
                "shutdown-timeout": "0",
            }
        )
        node = Server(self.binary, self.base_dir / f"node{i}", extra_args=args)
        self.nodes.append(node)
        self.bus_ports[node.port] = bus_port
        return node

    def _form(self, timeout_s: float) -> None:
        primaries = self.nodes[: self.primaries]
        for epoch, (node, (first, last)) in enumerate(
            zip(primaries, slot_ranges(self.primaries), strict=True), start=1
        ):
            command(node, "CLUSTER", "SET-CONFIG-EPOCH", epoch)  # distinct: no epoch collisions
            command(node, "CLUSTER", "ADDSLOTSRANGE", first, last)
        for node in self.nodes[1:]:
            command(
                self.nodes[0], "CLUSTER", "MEET", "127.0.0.1", node.port, self.bus_ports[node.port]
            )
        replicas = self.nodes[self.primaries :]
        for i, replica in enumerate(replicas):
            primary_id = self.node_id(primaries[i % self.primaries])
            self._poll(lambda r=replica, p=primary_id: p in self.known_ids(r), timeout_s, "meet")
            command(replica, "CLUSTER", "REPLICATE", primary_id)
        self.wait_settled(timeout_s)

    def node_id(self, node: Server) -> str:
        return str(command(node, "CLUSTER", "MYID"))

    def known_ids(self, node: Server) -> set[str]:
        return set(parse_nodes(command(node, "CLUSTER", "NODES"))[0])

    def view(self, node: Server) -> SlotMap:
        return parse_nodes(command(node, "CLUSTER", "NODES"))[1]

    def state_ok(self, node: Server) -> bool:
        return "cluster_state:ok" in str(command(node, "CLUSTER", "INFO"))

    def settled(self) -> bool:
        """Every live node is ok, sees every live node up and names the same live primaries."""
        live = self.live()
        live_ports = {node.port for node in live}
        try:
            views = {self.view(node) for node in live}
            if len(views) != 1 or not all(self.state_ok(node) for node in live):
                return False
            known = [set(parse_nodes(command(n, "CLUSTER", "NODES"))[0].values()) for n in live]
        except redis.exceptions.RedisError:
            return False
        (slot_map,) = views
        covered = sum(last - first + 1 for first, last, _ in slot_map)
        owners_live = {port for _, _, port in slot_map} <= live_ports
        return covered == SLOTS and owners_live and all(live_ports <= k for k in known)

    def wait_settled(self, timeout_s: float = 20.0) -> None:
        self._poll(self.settled, timeout_s, "settle")

    def _poll(self, done: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                views = "\n".join(self._describe(node) for node in self.live())
                raise TimeoutError(f"cluster did not {what} in {timeout_s} s:\n{views}")
            time.sleep(0.05)

    def _describe(self, node: Server) -> str:
        try:
            return f"node :{node.port}:\n{command(node, 'CLUSTER', 'NODES')}"
        except redis.exceptions.RedisError as exc:
            return f"node :{node.port}: {exc!r} {node.log_tail()[-300:]}"

    def primary_nodes(self) -> list[Server]:
        """The live nodes that serve slots now (after a failover, not the first three)."""
        ports = {port for _, _, port in self.view(self.live()[0])}
        return [node for node in self.live() if node.port in ports]

    def replica_of(self, primary: Server) -> Server:
        """A live replica of ``primary`` (started with ``replicas >= 1``)."""
        primary_id = self.node_id(primary)
        for line in str(command(primary, "CLUSTER", "NODES")).splitlines():
            parts = line.split()
            if parts[3] == primary_id and "fail" not in parts[2]:
                port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
                return next(node for node in self.live() if node.port == port)
        raise LookupError(f"no live replica of :{primary.port}")

    def owner(self, slot: int) -> Server:
        """The live node that serves ``slot`` now."""
        for first, last, port in self.view(self.live()[0]):
            if first <= slot <= last:
                return next(node for node in self.live() if node.port == port)
        raise LookupError(f"slot {slot} is served by no live node")

    def failover(self, replica: Server, timeout_s: float = 20.0) -> None:
        """``CLUSTER FAILOVER`` on ``replica``: it becomes the primary of its slots."""
        command(replica, "CLUSTER", "FAILOVER")
        self._poll(lambda: replica.role() == "master" and self.settled(), timeout_s, "fail over")

    def kill(self, node: Server) -> None:
        """SIGKILL one node; `wait_settled` then waits for its replica to take over."""
        node.kill()

    def stop_node(self, node: Server) -> None:
        """SIGTERM one node (it saves and exits); `restart` brings it back."""
        node.stop()

    def restart(self, node: Server, timeout_s: float = 20.0) -> None:
        """Start a stopped node again (same port, same nodes.conf): it rejoins the cluster."""
        node.start(timeout_s)
        self.wait_settled(timeout_s)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_cluster(binary: str, base_dir: Path, **options: Any) -> Cluster:
    """A started, settled cluster: RuntimeError if a node cannot start (with its log),
    TimeoutError if they do not form one in time (with each node's view)."""
    return Cluster(binary, base_dir, **options).start()
