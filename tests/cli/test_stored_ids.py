"""`sluice failed` lists jobs whatever their stored ids hold, even bytes that are not UTF-8."""

from __future__ import annotations

import json

from producer.contract.keys import Keys
from producer.contract.wire import now_ms
from producer.redis.typed import SyncRedis
from tests.support.cli import sluice


def test_failed_lists_ids_that_are_not_utf8(
    env: dict[str, str], rdb: SyncRedis, keys: Keys
) -> None:
    """A failed job written raw with a non-UTF-8 id is listed as \\xNN, in a table and JSON."""
    raw = b"raw-\xff-job"
    rdb.hset(keys.job("").encode() + raw, mapping={"state": "failed", "error": "boom"})
    rdb.zadd(keys.failed, {raw: now_ms()})
    table = sluice(env, "failed")
    assert table.exit_code == 0, table.stderr
    assert "raw-\\xff-job" in table.stdout and "boom" in table.stdout
    lines = sluice(env, "failed", "--json")
    assert lines.exit_code == 0, lines.stderr
    assert json.loads(lines.stdout)["job_id"] == "raw-\\xff-job"


def test_results_list_records_that_cannot_be_read(
    env: dict[str, str], rdb: SyncRedis, keys: Keys
) -> None:
    """A stored record that is not UTF-8 JSON is shown as a failed record saying so, in the
    table and as JSON; the records beside it are listed as stored."""
    good = {"index": 0, "input": "data:,a", "ok": True, "result": {"n": 1}, "timings": {}}
    rdb.hset(keys.job("junk"), mapping={"state": "complete", "total": "2"})
    rdb.hset(keys.results("junk"), mapping={"0": json.dumps(good), "1": b"\xff{"})
    table = sluice(env, "results", "junk")
    assert table.exit_code == 0, table.stderr
    assert '"n":1' in table.stdout and "UTF-8" in table.stdout
    lines = sluice(env, "results", "junk", "--json")
    assert lines.exit_code == 0, lines.stderr
    first, second = (json.loads(line) for line in lines.stdout.splitlines())
    assert first["result"] == {"n": 1}
    assert (second["index"], second["ok"]) == (1, False)
    assert second["error"].startswith("the stored record of input 1 cannot be read: not JSON")
