"""The HTTP API against a real server and real workers: every endpoint, and its errors."""

from __future__ import annotations

from typing import Any

import aiohttp
import jsonschema
from yarl import URL

from producer import Client, JobState
from producer.dashboard.openapi import spec
from producer.redis.typed import Redis
from tests.dashboard.support import TOKEN, Dashboard, Reply, call, eventually
from tests.support.workers import WorkerFactory


def check_schema(instance: Any, name: str) -> None:
    """``instance`` matches components/schemas/``name`` of the served OpenAPI description."""
    document = spec()
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    jsonschema.validate(instance, schema)


async def enqueue(session: aiohttp.ClientSession, dashboard: Dashboard, **job: Any) -> Reply:
    return await call(session, "POST", dashboard.at("/api/jobs"), token=TOKEN, json=job)


async def test_enqueue_status_results_stats_workers(
    dashboard: Dashboard, session: aiohttp.ClientSession, workers: WorkerFactory
) -> None:
    """A job enqueued over HTTP runs on a real worker; its status and paged results read back."""
    worker = workers()
    inputs = ["data:,one two", "data:,three", "data:,four five six"]
    created = await enqueue(session, dashboard, pipeline="text-stats", inputs=inputs)
    assert created.status == 201, created.body
    job_id = created.body["job_id"]
    assert created.headers["Location"] == f"/api/jobs/{job_id}"

    async def complete() -> bool:
        reply = await call(session, "GET", dashboard.at(f"/api/jobs/{job_id}"))
        return bool(reply.body["state"] == "complete")

    await eventually(complete, 60, "job complete")
    status = (await call(session, "GET", dashboard.at(f"/api/jobs/{job_id}"))).body
    assert (status["total"], status["stored"], status["failed"]) == (3, 3, 0)
    assert status["bottleneck"] in ("fetch", "transform", "store")
    check_schema(status, "JobStatus")

    page = await call(session, "GET", dashboard.at(f"/api/jobs/{job_id}/results?start=1&limit=1"))
    assert page.status == 200
    assert [(r["index"], r["input"]) for r in page.body["records"]] == [(1, inputs[1])]
    assert (page.body["total"], page.body["next_start"]) == (3, 2)
    check_schema(page.body["records"][0], "ItemRecord")
    everything = await call(session, "GET", dashboard.at(f"/api/jobs/{job_id}/results"))
    assert [r["result"]["words"] for r in everything.body["records"]] == [2, 1, 3]
    assert everything.body["next_start"] is None

    stats = await call(session, "GET", dashboard.at("/api/stats"))
    assert (stats.body["workers"], stats.body["ready"]) == (1, 0)
    check_schema(stats.body, "QueueStats")
    live = await call(session, "GET", dashboard.at("/api/workers"))
    assert [w["pid"] for w in live.body] == [worker.pid]
    check_schema(live.body[0], "WorkerInfo")
    assert "text-stats" in (await call(session, "GET", dashboard.at("/api/pipelines"))).body

    async def listed_complete() -> bool:
        # the listing is a snapshot shared for up to REFRESH_S (the throughput history takes
        # one in the background): one taken while the job ran may still be served
        listed = await call(session, "GET", dashboard.at("/api/jobs?state=complete"))
        return [j["job_id"] for j in listed.body["jobs"]] == [job_id]

    await eventually(listed_complete, 10, "the job listed as complete")


async def test_writes_need_the_token_and_reads_do_not(
    dashboard: Dashboard, session: aiohttp.ClientSession, client: Client, redis: Redis
) -> None:
    """Every write without the token, or with a wrong one, is refused (401); reads are open."""
    job_id = await client.enqueue("text-stats", ["data:,x"])
    writes = [
        ("POST", "/api/jobs"),
        ("POST", f"/api/jobs/{job_id}/cancel"),
        ("POST", f"/api/jobs/{job_id}/retry"),
        ("DELETE", f"/api/jobs/{job_id}"),
        ("POST", "/api/failed/retry"),
    ]
    body = {"pipeline": "text-stats", "inputs": ["data:,y"]}
    for method, path in writes:
        for token in (None, "wrong-token-0123456789"):
            reply = await call(session, method, dashboard.at(path), token=token, json=body)
            assert (reply.status, reply.body["error"]) == (401, "unauthorized"), (method, path)
            assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await client.status(job_id)).state == JobState.QUEUED
    assert await redis.zrange(client.keys.queue, 0, -1) == [job_id.encode()]
    for path in ("/api/stats", "/api/workers", "/api/jobs", f"/api/jobs/{job_id}", "/api/failed"):
        assert (await call(session, "GET", dashboard.at(path))).status == 200, path


async def test_read_only_and_tokenless_dashboards_refuse_writes(
    start_dashboard: Any, session: aiohttp.ClientSession, client: Client, redis: Redis
) -> None:
    """Read-only mode refuses writes even with the token; with no token set, writes are off."""
    read_only = await start_dashboard(dashboard_read_only=True)
    tokenless = await start_dashboard(dashboard_token=None)
    body = {"pipeline": "text-stats", "inputs": ["data:,y"]}
    for board, code in ((read_only, "read_only"), (tokenless, "actions_disabled")):
        reply = await call(session, "POST", board.at("/api/jobs"), token=TOKEN, json=body)
        assert (reply.status, reply.body["error"]) == (403, code)
        assert (await call(session, "GET", board.at("/api/stats"))).status == 200
    assert await redis.zcard(client.keys.queue) == 0


async def test_require_login_guards_reads(
    start_dashboard: Any, session: aiohttp.ClientSession
) -> None:
    """With SLUICE_DASHBOARD_REQUIRE_LOGIN reads need the token; pages send you to log in."""
    board = await start_dashboard(dashboard_require_login=True)
    assert (await call(session, "GET", board.at("/api/stats"))).status == 401
    assert (await call(session, "GET", board.at("/api/stats"), token=TOKEN)).status == 200
    page = await call(session, "GET", board.at("/jobs?state=queued"))
    assert page.status == 303
    target = URL(page.headers["Location"])
    assert (target.path, target.query["next"]) == ("/login", "/jobs?state=queued")
    assert (await call(session, "GET", board.at("/login"))).status == 200


async def test_cancel_retry_delete_and_retry_all(
    dashboard: Dashboard,
    session: aiohttp.ClientSession,
    client: Client,
    redis: Redis,
    workers: WorkerFactory,
) -> None:
    """Cancel a queued job; retry and delete failed ones; each refusal has its status."""
    api = dashboard.at("/api/jobs/")
    queued = await client.enqueue("text-stats", ["data:,q"])
    done = await call(session, "POST", api + f"{queued}/cancel", token=TOKEN)
    assert (done.status, done.body) == (200, {"job_id": queued, "state": "cancelled"})
    again = await call(session, "POST", api + f"{queued}/cancel", token=TOKEN)
    assert (again.status, again.body["error"]) == (409, "already_ended")
    assert "cancelled" in again.body["message"]
    for verb in ("cancel", "retry"):
        missing = await call(session, "POST", api + f"nope/{verb}", token=TOKEN)
        assert (missing.status, missing.body["error"]) == (404, "not_found")

    doomed = [await client.enqueue("text-stats", [f"data:,{i}"]) for i in range(3)]
    for job_id in doomed:  # every read of the results now errors: the job fails
        await redis.set(client.keys.results(job_id), "not a hash")
    workers(max_tries=1)
    for job_id in doomed:
        assert (await client.wait(job_id, timeout_s=60)).state == JobState.FAILED
    failed = await call(session, "GET", dashboard.at("/api/failed"))
    assert sorted(j["job_id"] for j in failed.body) == sorted(doomed)

    gone = await call(session, "DELETE", api + doomed[0], token=TOKEN)
    assert (gone.status, gone.body["deleted"]) == (200, True)
    assert (await client.status(doomed[0])).state == JobState.NOT_FOUND
    assert not await redis.exists(*client.keys.job_keys(doomed[0]))
    assert (await call(session, "DELETE", api + doomed[0], token=TOKEN)).status == 404

    for job_id in doomed[1:]:
        await redis.delete(client.keys.results(job_id))
    retried = await call(session, "POST", api + f"{doomed[1]}/retry", token=TOKEN)
    assert (retried.status, retried.body["state"]) == (200, "queued")
    everything = await call(session, "POST", dashboard.at("/api/failed/retry"), token=TOKEN)
    assert everything.body == {"retried": [doomed[2]], "errors": {}}
    for job_id in doomed[1:]:
        assert (await client.wait(job_id, timeout_s=60)).state == JobState.COMPLETE
    not_failed = await call(session, "POST", api + f"{doomed[1]}/retry", token=TOKEN)
    assert (not_failed.status, not_failed.body["error"]) == (409, "conflict")

    live = await client.enqueue("text-stats", ["data:,live"], defer_s=3600)
    refused = await call(session, "DELETE", api + live, token=TOKEN)
    assert (refused.status, refused.body["error"]) == (409, "conflict")
    assert (await client.status(live)).state == JobState.DEFERRED


async def test_bad_queries_get_400(dashboard: Dashboard, session: aiohttp.ClientSession) -> None:
    """Paging parameters out of range and unknown states are refused with a JSON 400."""
    for path in (
        "/api/jobs/x/results?limit=0",
        "/api/jobs/x/results?start=-1",
        "/api/jobs/x/results?limit=many",
        "/api/jobs?state=sleeping",
        "/api/failed?limit=0",
    ):
        reply = await call(session, "GET", dashboard.at(path))
        assert (reply.status, reply.body["error"]) == (400, "bad_request"), path
    unknown = await call(session, "GET", dashboard.at("/api/jobs/nope"))
    assert (unknown.status, unknown.body["error"]) == (404, "not_found")
    check_schema(unknown.body, "Error")
    assert (await call(session, "GET", dashboard.at("/api/nothing-here"))).status == 404


async def test_openapi_describes_every_route(
    dashboard: Dashboard, session: aiohttp.ClientSession
) -> None:
    """/api/openapi.json lists exactly the API's routes; every write requires the bearer token."""
    document = (await call(session, "GET", dashboard.at("/api/openapi.json"))).body
    assert document["openapi"].startswith("3.1")
    described = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    from producer.dashboard.app import create_app

    app = create_app(dashboard.settings)
    served = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/api") and r.method != "HEAD"
    }
    assert described == served
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            write = method != "get"
            assert (op["security"] == [{"bearer": []}]) is write, (method, path)
            assert {} in op["security"] or write


async def test_a_job_of_a_named_queue_over_http(
    dashboard: Dashboard, session: aiohttp.ClientSession
) -> None:
    """POST /api/jobs takes the queue, priority and per-job settings; the status, the
    listing's queue filter, /api/stats and the overview page show them."""
    created = await enqueue(
        session,
        dashboard,
        pipeline="text-stats",
        inputs=["data:,x"],
        queue="reports",
        priority=4,
        timeout_s=90,
        max_tries=3,
        result_ttl_s=3600,
    )
    assert created.status == 201, created.body
    job_id = created.body["job_id"]
    status = (await call(session, "GET", dashboard.at(f"/api/jobs/{job_id}"))).body
    check_schema(status, "JobStatus")
    chosen = ("queue", "priority", "timeout_s", "max_tries", "result_ttl_s")
    assert [status[name] for name in chosen] == ["reports", 4, 90.0, 3, 3600]
    plain = await enqueue(session, dashboard, pipeline="text-stats", inputs=["data:,y"])
    listed = await call(session, "GET", dashboard.at("/api/jobs?queue=reports"))
    assert [job["job_id"] for job in listed.body["jobs"]] == [job_id]
    assert plain.body["job_id"] not in str(listed.body)
    stats = (await call(session, "GET", dashboard.at("/api/stats"))).body
    check_schema(stats, "QueueStats")
    assert {name: q["ready"] for name, q in stats["queues"].items()} == {
        "default": 1,
        "reports": 1,
    }
    page = await call(session, "GET", dashboard.at("/"))
    assert 'id="queues-table"' in str(page.body) and "reports" in str(page.body)
