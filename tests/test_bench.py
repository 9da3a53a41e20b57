"""The benchmark's own measuring (benchmarks/): what it counts as done, on a real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import command_floor, script_cost, workloads
from benchmarks.http_server import HttpServer
from benchmarks.measure import total_counts
from benchmarks.report import notes
from benchmarks.runner import Limits, RunResult, run_one
from benchmarks.systems import Context
from benchmarks.systems.sluice_cluster import SluiceCluster
from benchmarks.systems.sluice_system import SluiceSystem, SluiceX2
from benchmarks.workloads import WORKLOADS
from producer import Client, ClientSettings
from producer.contract.keys import Keys
from producer.redis.typed import Redis
from tests.support.cluster import Cluster
from tests.support.cluster_slots import key_slot
from tests.support.servers import Server
from worker.lifecycle.claim import Claimer

REPO = Path(__file__).resolve().parents[1]


def bench_context(redis: Redis, server: Server, namespace: str, tmp_path: Path) -> Context:
    return Context(
        redis=redis,
        redis_url=server.url,
        namespace=namespace,
        cores=2,
        fetch_concurrency=8,
        poll_delay_s=0.05,
        log_dir=tmp_path,
    )


async def test_tiny_jobs_claimed_but_not_ended_are_not_done(
    redis: Redis, server: Server, client: Client, namespace: str, tmp_path: Path
) -> None:
    """Sluice's tiny-job count leaves out jobs a worker holds and has not ended."""
    tiny = WORKLOADS["tiny"]
    ctx = bench_context(redis, server, namespace, tmp_path)
    system = SluiceSystem(ctx, tiny, tiny.uris(20, ""))
    system.client = client
    system.job_ids = []
    await system.submit()
    assert await system.done() == 0
    claimer = Claimer(redis, Keys(namespace), "bench-test", 30, 100, 60)
    claim = await claimer.claim(room=100, most=100, aborts_since_ms=0)
    assert len(claim.units) == 20
    assert await redis.zcard(Keys(namespace).queue) == 0
    assert await system.done() == 0


async def test_a_fleet_run_reports_each_workers_units_and_the_servers_cost(
    redis: Redis, server: Server, namespace: str, tmp_path: Path
) -> None:
    """A scale-out run on two worker processes finishes every input and reports the units
    each worker finished, the limit for both workers' fetches, and Redis's commands and CPU."""
    backlog = WORKLOADS["scale-backlog"]
    http = HttpServer(tmp_path / "http.log", 0).start()
    try:
        uris = backlog.uris(32, http.base)  # 8 jobs of 4 inputs: 8 units
        ctx = bench_context(redis, server, namespace, tmp_path)
        ctx.fetch_concurrency, ctx.pool_size = backlog.fetches(64), backlog.pool_size
        limit = workloads.limit_s(backlog, len(uris), 0.0, 2, SluiceX2.workers * 8)
        limits = Limits(limit, checkpoint=0, budget_s=60, sample_s=0.1)
        result = await run_one(SluiceX2, ctx, backlog, uris, limits)
    finally:
        http.stop()
    assert result.error is None
    assert (result.completed, result.failed, result.partial) == (32, 0, False)
    units = result.extra["units_per_worker"]
    assert len(units) == 2 and sum(units) == 8, units
    assert result.limit_s == 0.2 * 32 / 16 and result.efficiency is not None
    assert result.redis_calls_per_input > 0 and result.redis_cpu_ms_per_input > 0


async def test_the_counts_of_a_clusters_nodes_are_summed(cluster: Cluster, namespace: str) -> None:
    """total_counts adds up every node's commands: writes to keys on all three nodes are all
    counted, whichever node served them."""
    nodes = [Redis.from_url(url) for url in cluster.urls]
    try:
        before = await total_counts(nodes)
        for node, tag in zip(nodes, owned_tags(cluster), strict=True):
            for i in range(5):
                await node.set(f"{{{tag}}}:{namespace}:{i}", i)
        after = await total_counts(nodes)
    finally:
        for node in nodes:
            await node.aclose()
    assert after.calls["set"] - before.calls.get("set", 0) == 15
    assert after.cpu_s >= before.cpu_s


def owned_tags(cluster: Cluster) -> list[str]:
    """A hash tag served by each node, in the order of ``cluster.urls``."""
    ports = [node.port for node in cluster.live()]
    tags: dict[int, str] = {}
    for i in range(1000):
        tags.setdefault(cluster.owner(key_slot(cluster, f"{{t{i}}}")).port, f"t{i}")
    return [tags[port] for port in ports]


async def test_the_cluster_system_measures_every_node(
    redis: Redis, server: Server, namespace: str, tmp_path: Path
) -> None:
    """sluice-cluster's own cluster has three nodes; the run reads the counts of each and
    counts their processes' CPU with the servers'; stopping the system stops them."""
    tiny = WORKLOADS["tiny"]
    ctx = bench_context(redis, server, namespace, tmp_path)
    ctx.infra_pids = [12345]
    system = SluiceCluster(ctx, tiny, [])
    await system.start_cluster()
    assert system.cluster is not None
    nodes = [node.process for node in system.cluster.nodes]
    try:
        assert system.ctx.redis_url in system.cluster.urls and len(system.servers()) == 3
        ports = {node.connection_pool.connection_kwargs["port"] for node in system.servers()}
        assert ports == {node.port for node in system.cluster.nodes}
        pids = {process.pid for process in nodes if process}
        assert set(system.infra_pids()) == {12345, *pids}
        assert system.settings()["SLUICE_REDIS_CLUSTER"] == "true"
        assert system.settings()["SLUICE_REDIS_URL"] == system.cluster.url
    finally:
        await system.stop(graceful=True)
    assert all(process is not None and process.poll() is not None for process in nodes)


async def test_tiny_jobs_run_on_the_cluster(
    redis: Redis, server: Server, namespace: str, tmp_path: Path
) -> None:
    """sluice-cluster starts its own 3-primary cluster, runs every tiny job on it and counts
    the commands of all three nodes; without cluster support it says what is missing."""
    tiny = WORKLOADS["tiny"]
    ctx = bench_context(redis, server, namespace, tmp_path)
    limits = Limits(None, checkpoint=0, budget_s=60, sample_s=0.1)
    result = await run_one(SluiceCluster, ctx, tiny, tiny.uris(200, ""), limits)
    if "redis_cluster" not in ClientSettings.model_fields:
        assert result.error is not None and "SLUICE_REDIS_CLUSTER" in result.error
        pytest.skip("Sluice has no SLUICE_REDIS_CLUSTER yet: the cluster run cannot be made")
    assert result.error is None
    assert (result.completed, result.failed, result.partial) == (200, 0, False)
    assert result.redis_calls_per_input > 0 and result.redis_cpu_ms_per_input > 0
    assert result.cpu_infra_s > 0


async def test_script_cost_ends_every_job_and_prices_each_script(tmp_path: Path) -> None:
    """`benchmarks.script_cost` enqueues, claims and ends every job on a server of its own and
    prices each script a job; against a checkout (this one here) it runs that tree's claim
    and ending as well, a call of each tree in turn, half the jobs each."""
    root = REPO
    costs = await script_cost.measure(120, 1, root, tmp_path / "server")
    assert costs.jobs["enqueue", script_cost.THIS] == 120
    for script in ("claim", "end"):
        assert costs.jobs[script, script_cost.THIS] == costs.jobs[script, str(root)] == 60
    assert sum(costs.cpu_s.values()) > 0
    table = script_cost.report(costs)
    assert table.splitlines()[0].split()[-1] == str(root)[-24:].split()[-1]
    assert [line.split()[0] for line in table.splitlines()[1:]] == ["enqueue", "claim", "end"]


def test_the_report_prices_a_jobs_redis_cpu_against_arq_in_the_same_run() -> None:
    def run(system: str, cpu_ms: float) -> RunResult:
        run = RunResult("tiny", system, "", 100, completed=100, wall_s=1.0, throughput=100.0)
        run.redis_cpu_ms_per_input = cpu_ms
        return run

    sluice, noop = run("sluice", 0.08), run("arq-noop", 0.32)
    assert "Redis CPU a job 0.25× arq no-op's" in notes([sluice, noop], sluice)
    assert "Redis CPU" not in notes([sluice, run("arq-noop", 0.0)], sluice)


async def test_the_command_floor_replays_what_the_scripts_wrote(tmp_path: Path) -> None:
    """`benchmarks.command_floor` captures the commands each script call ran and sends them
    again for fresh jobs: the jobs it replays end as the scripts' own jobs do, key for key
    and field for field, so its floor is the price of the same work without Lua."""
    async with script_cost.bench(None, tmp_path / "server") as b:
        calls, ids = await command_floor.capture(b, jobs=45)
        assert {call.script for call in calls} == {"enqueue", "claim", "end"}
        costs = script_cost.Costs()
        copies = await command_floor.replay(b, calls, 45, costs)
        keys = b.client.keys
        for job_id, copy in zip(ids, copies, strict=True):
            copied = copy.decode()
            ran = await b.redis.hgetall(keys.job(job_id))
            replayed = await b.redis.hgetall(keys.job(copied))
            assert ran[b"state"] == b"complete"
            assert ran.keys() == replayed.keys()
            for name in (b"state", b"total", b"stored", b"units", b"worker"):
                assert ran[name] == replayed[name]
            assert await b.redis.hgetall(keys.results(job_id)) == await b.redis.hgetall(
                keys.results(copied)
            )
            assert await b.redis.ttl(keys.job(copied)) > 0
        assert costs.jobs["end", command_floor.FLOOR] == 45
        assert costs.cpu_s["end", command_floor.FLOOR] > 0
