"""The job page shows the waiting for rate limits beside the stages, and the API and the
workers page show the rate limits: what a rate-limited job looks like in the dashboard."""

from __future__ import annotations

import aiohttp

from producer import ClientSettings
from producer.contract.keys import Keys
from producer.redis.typed import Redis
from tests.dashboard.support import Dashboard, call
from tests.support.rate_limited import RATES, rate_limited_job, register_worker


async def test_the_dashboard_shows_rate_limits(
    dashboard: Dashboard, session: aiohttp.ClientSession, redis: Redis, settings: ClientSettings
) -> None:
    keys = Keys(settings.namespace)
    for key, fields in rate_limited_job(keys, "rated-job").items():
        await redis.hset(key, mapping=fields)
    await redis.zadd(*register_worker(keys))
    page = await call(session, "GET", dashboard.at("/jobs/rated-job"))
    assert page.status == 200
    assert 'id="rate-wait"' in page.body and "Bottleneck: <b>rate_limit</b>" in page.body
    assert "64% of the fetch capacity" in page.body
    api = (await call(session, "GET", dashboard.at("/api/jobs/rated-job"))).body
    assert (api["rate_wait_count"], api["rate_wait_s"], api["bottleneck"]) == (
        39,
        20.5,
        "rate_limit",
    )
    workers = await call(session, "GET", dashboard.at("/workers"))
    assert all(rate in workers.body for rate in RATES)
    [worker] = (await call(session, "GET", dashboard.at("/api/workers"))).body
    assert worker["rates"] == RATES
