"""The test cluster is a real Valkey Cluster: redis-py's cluster client spreads keys over its
three primaries, the servers refuse a script whose keys span slots and run one whose keys share
a hash tag, and the fault helpers (failover, a killed primary, a slot moved) do what they say."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import redis
from redis.asyncio.cluster import RedisCluster

from tests.support.cluster import Cluster, command
from tests.support.cluster_slots import SlotMove, key_slot, migrate_slot
from tests.support.servers import Server

SCRIPT = "return redis.call('SET', KEYS[1], ARGV[1]) and redis.call('GET', KEYS[2])"


@pytest.fixture
async def rc(cluster: Cluster) -> AsyncIterator[RedisCluster]:
    client = RedisCluster.from_url(cluster.url)
    yield client
    await client.aclose()


def keys_on(node: Server, pattern: str) -> set[bytes]:
    with redis.Redis(port=node.port) as client:
        return set(client.scan_iter(match=pattern, count=1000))


async def test_the_cluster_has_three_primaries_sharing_every_slot(cluster: Cluster) -> None:
    """Three live primaries, each serving about a third of the 16384 slots, all agreeing."""
    assert len(cluster.primary_nodes()) == 3
    sizes = [last - first + 1 for first, last, _ in cluster.view(cluster.nodes[0])]
    assert sum(sizes) == 16384 and min(sizes) > 5000
    assert cluster.settled()


async def test_keys_spread_over_the_three_nodes(
    cluster: Cluster, rc: RedisCluster, namespace: str
) -> None:
    """Keys written through the cluster client land on every primary, each on its slot's owner."""
    for i in range(60):
        await rc.set(f"{namespace}:{i}", i)
    found = {node.port: keys_on(node, f"{namespace}:*") for node in cluster.primary_nodes()}
    assert all(found.values()) and sum(len(keys) for keys in found.values()) == 60
    for port, keys in found.items():
        for key in keys:
            assert cluster.owner(key_slot(cluster, key.decode())).port == port


async def test_a_script_across_slots_is_refused(cluster: Cluster, namespace: str) -> None:
    """The server answers CROSSSLOT to a script whose keys hash to different slots."""
    a, b = f"{namespace}:a", f"{namespace}:b"
    assert key_slot(cluster, a) != key_slot(cluster, b)
    node = cluster.owner(key_slot(cluster, a))
    with pytest.raises(redis.ResponseError, match="CROSSSLOT"):
        command(node, "EVAL", SCRIPT, 2, a, b, "x")


async def test_a_script_within_one_hash_tag_runs(
    cluster: Cluster, rc: RedisCluster, namespace: str
) -> None:
    """Keys sharing a {hash tag} share a slot, so one script may touch them all."""
    a, b = f"{{{namespace}}}:a", f"{{{namespace}}}:b"
    await rc.set(b, "there")
    assert await rc.execute_command("EVAL", SCRIPT, 2, a, b, "x") == b"there"
    assert await rc.get(a) == b"x"


async def test_a_failover_promotes_the_replica(
    make_cluster: Callable[..., Cluster], namespace: str
) -> None:
    """CLUSTER FAILOVER on a replica makes it the primary; the client follows it."""
    cluster = make_cluster(replicas=1)
    client = RedisCluster.from_url(cluster.url)
    try:
        await client.set(namespace, "kept")
        primary = cluster.owner(key_slot(cluster, namespace))
        replica = cluster.replica_of(primary)
        cluster.failover(replica)
        assert cluster.owner(key_slot(cluster, namespace)) is replica
        assert primary.role() == "slave"
        assert await client.get(namespace) == b"kept"
    finally:
        await client.aclose()


async def test_a_killed_primary_is_replaced_by_its_replica(
    make_cluster: Callable[..., Cluster], namespace: str
) -> None:
    """SIGKILL of a primary: its replica takes its slots and the cluster is whole again;
    restarted, the old primary rejoins as the new one's replica."""
    cluster = make_cluster(replicas=1)
    primary = cluster.primary_nodes()[0]
    replica = cluster.replica_of(primary)
    with redis.Redis(port=primary.port) as direct:
        tagged = next(
            f"{namespace}:{i}"
            for i in range(1000)
            if cluster.owner(key_slot(cluster, f"{namespace}:{i}")) is primary
        )
        direct.set(tagged, "kept")
        assert direct.execute_command("WAIT", 1, 2000) == 1
    cluster.kill(primary)
    cluster.wait_settled()
    assert cluster.owner(key_slot(cluster, tagged)) is replica
    with redis.Redis(port=replica.port) as direct:
        assert direct.get(tagged) == b"kept"
    cluster.restart(primary)  # it comes back as the replica of its successor
    assert primary.role() == "slave" and cluster.replica_of(replica) is primary


async def test_a_slot_moves_with_its_keys(
    make_cluster: Callable[..., Cluster], namespace: str
) -> None:
    """migrate_slot hands a slot and its keys to another primary; the client follows."""
    cluster = make_cluster()
    client = RedisCluster.from_url(cluster.url)
    try:
        keys = [f"{{{namespace}}}:{i}" for i in range(250)]
        for key in keys:
            await client.set(key, key)
        slot = key_slot(cluster, keys[0])
        source = cluster.owner(slot)
        target = next(node for node in cluster.primary_nodes() if node is not source)
        assert migrate_slot(cluster, slot, target) == 250
        assert cluster.owner(slot) is target
        assert keys_on(target, f"{{{namespace}}}:*") == {key.encode() for key in keys}
        assert not keys_on(source, f"{{{namespace}}}:*")
        assert await client.get(keys[-1]) == keys[-1].encode()
    finally:
        await client.aclose()


async def test_a_slot_half_moved_answers_ask(
    make_cluster: Callable[..., Cluster], namespace: str
) -> None:
    """Between begin and finish, the source sends clients on with ASK for moved keys."""
    cluster = make_cluster()
    key = f"{{{namespace}}}:k"
    slot = key_slot(cluster, key)
    source = cluster.owner(slot)
    target = next(node for node in cluster.primary_nodes() if node is not source)
    command(source, "SET", key, "v")
    move = SlotMove(cluster, slot, source, target).begin()
    assert move.move_keys() == 1
    with pytest.raises(redis.ResponseError, match="ASK"):
        command(source, "GET", key)
    client = RedisCluster.from_url(cluster.url)
    try:
        assert await client.get(key) == b"v"
    finally:
        await client.aclose()
    move.finish()
    assert cluster.owner(slot) is target
