"""The CLI at 80 columns: `sluice failed` and `sluice results` cut no id, time or error."""

from __future__ import annotations

import json
import time

from producer.client.display import format_time
from producer.contract.keys import Keys
from producer.contract.wire import dumps
from producer.redis.typed import SyncRedis
from tests.support.cli import sluice

WIDTH = 80
LONG_ERROR = " ".join(f"word{i}" for i in range(60)) + " " + "x" * 150  # spaces, then one long word


def squeezed(text: str) -> str:
    return "".join(text.split())


def narrow(env: dict[str, str]) -> dict[str, str]:
    return {**env, "COLUMNS": str(WIDTH)}


def test_failed_at_80_columns_cuts_nothing(env: dict[str, str], rdb: SyncRedis, keys: Keys) -> None:
    """Each failed job's id and finished time stay whole on a line; its error wraps whole."""
    job_id = "failed-job-with-a-rather-long-id-0123456789"
    finished = time.time()
    status: dict[str, str | int] = {
        "state": "failed",
        "pipeline": "text-stats",
        "total": 2,
        "stored": 1,
    }
    rdb.hset(keys.job(job_id), mapping={**status, "error": LONG_ERROR, "finished_at": finished})
    rdb.zadd(keys.failed, {job_id: finished})
    result = sluice(narrow(env), "failed")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    assert any(job_id in line for line in lines)
    assert format_time(finished) in result.stdout
    assert squeezed(LONG_ERROR) in squeezed(result.stdout)
    assert sum(len(line.split()) == 1 for line in lines) <= 3  # not one word a line

    as_json = json.loads(sluice(narrow(env), "failed", "--json").stdout)
    assert (as_json["job_id"], as_json["error"]) == (job_id, LONG_ERROR)


def test_results_at_80_columns_wraps_errors_whole(
    env: dict[str, str], rdb: SyncRedis, keys: Keys
) -> None:
    """An error longer than the line is wrapped in its column, never cut; --json is unchanged."""
    long_input = "https://example.com/" + "/".join(f"segment{i}" for i in range(12))
    records = [
        {"index": 0, "input": "data:,x", "ok": False, "error": LONG_ERROR, "timings": {}},
        {"index": 1, "input": long_input, "ok": False, "error": "HTTP 404", "timings": {}},
    ]
    for record in records:
        rdb.hset(keys.results("narrow"), str(record["index"]), dumps(record))
    rdb.hset(keys.job("narrow"), mapping={"state": "complete", "total": 2, "stored": 2})
    result = sluice(narrow(env), "results", "narrow")
    assert result.exit_code == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= WIDTH
    assert "…" not in result.stdout
    assert squeezed(LONG_ERROR) in squeezed(result.stdout)
    # the long input folds in its column; its first line ends with the row's other cells
    assert long_input in squeezed(result.stdout).replace("✗HTTP404", "")
    lines = sluice(narrow(env), "results", "narrow", "--json").stdout.splitlines()
    assert [json.loads(line)["error"] for line in lines] == [LONG_ERROR, "HTTP 404"]
