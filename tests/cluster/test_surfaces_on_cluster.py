"""The dashboard, its event stream, webhooks, the CLI and SyncClient on a real 3-primary
Valkey Cluster (16 shards): each finds a job on its node from the id alone, and every list,
count and stream reads every shard."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from producer import Client, ClientSettings, JobState, SyncClient
from producer.contract.keys import shard_of
from producer.contract.models import WebhookState
from producer.dashboard.app import create_app
from producer.dashboard.settings import DashboardSettings
from tests.cluster.test_on_cluster import no_crossslot, sluice
from tests.conftest import worker_env
from tests.dashboard.support import TOKEN, call
from tests.dashboard.test_events import messages
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.workers import WorkerFactory

SECRET = "s3cret-for-the-cluster-tests"


@asynccontextmanager
async def dashboard_on(settings: ClientSettings) -> AsyncIterator[str]:
    """A dashboard in cluster mode on a free port: its base URL."""
    config = DashboardSettings(
        **settings.model_dump(include={"redis_url", "redis_cluster", "namespace", "data_dir"}),
        dashboard_token=TOKEN,
        _env_file=None,
    )
    runner = web.AppRunner(create_app(config, sample_s=0.5), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_dashboard_events_and_webhooks(
    on_cluster: Client, cluster_settings: ClientSettings, cluster_workers: WorkerFactory
) -> None:
    """Ten jobs over several shards run with a callback URL: each POST arrives once, signed;
    the dashboard's API and pages show each job, list and count them all, cancel and retry
    a deferred one on its node; its event stream has every job's events."""
    receiver = WebhookReceiver(secret=SECRET).start()
    try:
        cluster_workers(webhook_secret=SECRET, webhook_backoff_s=0.1)
        url = receiver.url("done")
        ids = await on_cluster.enqueue_many(
            "text-stats", [[f"data:,w{i}"] for i in range(10)], callback_url=url
        )
        assert len({shard_of(i, 16) for i in ids}) >= 5
        later = await on_cluster.enqueue("text-stats", ["data:,later"], defer_s=3600)
        for job_id in ids:
            assert (await on_cluster.wait(job_id, timeout_s=60)).state == JobState.COMPLETE
        for _ in range(200):
            hooks = [(await on_cluster.status(i)).webhook for i in ids]
            if all(h is not None and h.state == WebhookState.DELIVERED for h in hooks):
                break
            await asyncio.sleep(0.05)
        posts = receiver.to("done")
        assert sorted(p.body["job_id"] for p in posts) == sorted(ids)
        assert all(p.signed and p.body["state"] == "complete" for p in posts)
    finally:
        receiver.stop()

    async with aiohttp.ClientSession() as session, dashboard_on(cluster_settings) as base:
        listed = await call(session, "GET", f"{base}/api/jobs")
        assert {j["job_id"] for j in listed.body["jobs"]} == {*ids, later}
        stats = await call(session, "GET", f"{base}/api/stats")
        assert (stats.body["deferred"], stats.body["workers"]) == (1, 1)
        one = await call(session, "GET", f"{base}/api/jobs/{ids[3]}")
        assert (one.body["state"], one.body["stored"]) == ("complete", 1)
        for page in ("/", "/jobs", f"/jobs/{ids[3]}", "/failed", "/workers"):
            assert (await call(session, "GET", base + page)).status == 200, page
        cancelled = await call(session, "POST", f"{base}/api/jobs/{later}/cancel", token=TOKEN)
        assert cancelled.body["state"] == "cancelled"
        retried = await call(session, "POST", f"{base}/api/jobs/{later}/retry", token=TOKEN)
        assert retried.body["state"] == "queued"
        async with session.get(f"{base}/api/events?since=0&type=completed") as response:
            completed = await messages(response, len(ids), timeout_s=20)
        assert sorted(m["data"]["job"] for m in completed) == sorted(ids)
    assert (await on_cluster.wait(later, timeout_s=60)).state == JobState.COMPLETE
    no_crossslot(cluster_workers)


async def test_cli_and_sync_client(cluster_settings: ClientSettings, tmp_path: Path) -> None:
    """No worker: `sluice jobs`, `cancel`, `retry`, `events` and `stats` on the cluster, and
    the blocking client's enqueue, cancel, listing and status."""
    env = {
        **worker_env(cluster_settings.redis_url or "", cluster_settings.namespace, tmp_path),
        "SLUICE_REDIS_CLUSTER": "true",
    }

    def run() -> list[str]:
        with SyncClient(cluster_settings) as client:
            ids = [client.enqueue("text-stats", [f"data:,{i}"]) for i in range(6)]
            assert client.cancel(ids[0]) is True
            assert {j.job_id for j in client.jobs().jobs} == set(ids)
            assert client.status(ids[0]).state == JobState.CANCELLED
            assert client.stats().ready == 5
        return ids

    ids = await asyncio.to_thread(run)
    cancelled = await asyncio.to_thread(sluice, env, "cancel", ids[1])
    assert cancelled.returncode == 0, cancelled.stderr
    retried = await asyncio.to_thread(sluice, env, "retry", ids[0])
    assert retried.returncode == 0, retried.stderr
    listed = await asyncio.to_thread(sluice, env, "jobs", "--json")
    assert listed.returncode == 0, listed.stderr
    states = {j["job_id"]: j["state"] for j in map(json.loads, listed.stdout.splitlines())}
    assert states == {i: "cancelled" if i == ids[1] else "queued" for i in ids}
    events = await asyncio.to_thread(sluice, env, "events", "--json", "--since", "0")
    assert events.returncode == 0, events.stderr
    kinds = [(e["job"], e["type"]) for e in map(json.loads, events.stdout.splitlines())]
    assert sorted(kinds) == sorted(
        [(i, "enqueued") for i in ids]
        + [(ids[0], "cancelled"), (ids[1], "cancelled"), (ids[0], "retried")]
    )
    stats = await asyncio.to_thread(sluice, env, "stats", "--json")
    assert json.loads(stats.stdout)["ready"] == 5
