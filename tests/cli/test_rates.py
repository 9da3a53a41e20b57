"""`sluice status` shows the waiting for rate limits as a row of its own, and names it the
bottleneck when it weighs most; `sluice workers` lists the limits each worker applies."""

from __future__ import annotations

import json

from producer.contract.keys import Keys
from producer.redis.typed import SyncRedis
from tests.support.cli import sluice
from tests.support.rate_limited import RATES, rate_limited_job, register_worker


def test_status_and_workers_show_rate_limits(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, job_id: str
) -> None:
    for key, fields in rate_limited_job(keys, job_id).items():
        rdb.hset(key, mapping=fields)
    rdb.zadd(*register_worker(keys))
    wide = {**env, "COLUMNS": "200"}
    [row] = [
        line for line in sluice(wide, "status", job_id).stdout.splitlines() if "rate_li" in line
    ]
    assert "20.500" in row and "64%" in row and "bottleneck" in row
    status = json.loads(sluice(env, "status", job_id, "--json").stdout)
    assert (status["rate_wait_count"], status["rate_wait_s"]) == (39, 20.5)
    assert status["bottleneck"] == "rate_limit"
    listed = sluice(wide, "workers").stdout
    assert all(rate in listed for rate in RATES), listed
    [worker] = [json.loads(line) for line in sluice(env, "workers", "--json").stdout.splitlines()]
    assert worker["rates"] == RATES
