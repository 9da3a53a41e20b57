"""Webhooks over HTTP: POST /api/jobs takes a callback_url, the status and the job page show
its delivery, and a bad one is refused naming the field."""

from __future__ import annotations

import aiohttp

from tests.dashboard.support import Dashboard, call, eventually
from tests.dashboard.test_api import check_schema, enqueue
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.workers import WorkerFactory

SECRET = "s3cret-for-the-api-tests"


async def test_callback_url_over_http(
    dashboard: Dashboard, session: aiohttp.ClientSession, workers: WorkerFactory
) -> None:
    """The ending is POSTed signed; GET /api/jobs/{id} (per the OpenAPI schema) and the job
    page show it delivered."""
    receiver = WebhookReceiver(secret=SECRET).start()
    try:
        workers(webhook_secret=SECRET)
        url = receiver.url("api")
        created = await enqueue(
            session, dashboard, pipeline="text-stats", inputs=["data:,x"], callback_url=url
        )
        assert created.status == 201, created.body
        job_id = created.body["job_id"]
        status_url = dashboard.at(f"/api/jobs/{job_id}")

        async def delivered() -> bool:
            body = (await call(session, "GET", status_url)).body
            return bool((body.get("webhook") or {}).get("state") == "delivered")

        await eventually(delivered)
        status = (await call(session, "GET", status_url)).body
        check_schema(status, "JobStatus")
        assert status["webhook"]["url"] == url and status["webhook"]["attempts"] == 1
        assert [r.signed for r in receiver.to("api")] == [True]
        page = str((await call(session, "GET", dashboard.at(f"/jobs/{job_id}"))).body)
        assert 'id="job-webhook"' in page and "delivered" in page and url in page
    finally:
        receiver.stop()


async def test_a_bad_callback_url_gets_422(
    dashboard: Dashboard, session: aiohttp.ClientSession
) -> None:
    reply = await enqueue(
        session,
        dashboard,
        pipeline="text-stats",
        inputs=["data:,x"],
        callback_url="https://user:pw@example.com/",
    )
    assert reply.status == 422
    assert "callback_url" in reply.body["message"]
    assert "pw@" not in str(reply.body)
