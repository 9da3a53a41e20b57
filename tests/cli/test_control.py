"""The CLI's steering verbs against a real server and workers: cancel, failed, retry, workers."""

from __future__ import annotations

import json

from typer.testing import CliRunner, Result

from producer import ClientSettings
from producer.cli.app import app
from producer.redis.typed import SyncRedis
from tests.support.workers import WorkerFactory


def sluice(settings: ClientSettings, *args: str) -> Result:
    env = {"SLUICE_REDIS_URL": str(settings.redis_url), "SLUICE_NAMESPACE": settings.namespace}
    env["SLUICE_SHARDS"] = str(settings.keys.shards)
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def enqueue(settings: ClientSettings, *args: str) -> str:
    result = sluice(settings, "enqueue", *args, "--json")
    assert result.exit_code == 0, result.stderr
    job_id: str = json.loads(result.stdout)["job_id"]
    return job_id


def test_cancel_a_queued_job(settings: ClientSettings) -> None:
    """`sluice cancel` stops a queued job; a second cancel says it already ended, exit 1."""
    job_id = enqueue(settings, "text-stats", "data:,x")
    first = sluice(settings, "cancel", job_id)
    assert (first.exit_code, first.stdout) == (0, f"cancelled {job_id}\n")
    assert json.loads(sluice(settings, "status", job_id, "--json").stdout)["state"] == "cancelled"
    again = sluice(settings, "cancel", job_id)
    assert again.exit_code == 1
    assert "already ended (cancelled)" in again.stderr
    assert sluice(settings, "cancel", "no-such-job").exit_code == 1


def test_failed_lists_and_retry_requeues(settings: ClientSettings, workers: WorkerFactory) -> None:
    """A failed job shows in `sluice failed`; `sluice retry` puts it back; it then completes."""
    job_id = enqueue(settings, "text-stats", "data:,a")
    rdb = SyncRedis.from_url(str(settings.redis_url))
    keys = settings.keys
    rdb.set(keys.results(job_id), "not a hash")  # the job errors on every try
    workers(max_tries=1)
    assert sluice(settings, "enqueue", "text-stats", "data:,b", "--wait").exit_code == 0
    listed = [json.loads(line) for line in sluice(settings, "failed", "--json").stdout.splitlines()]
    assert [(j["job_id"], j["state"]) for j in listed] == [(job_id, "failed")]
    assert "WRONGTYPE" in listed[0]["error"]
    table = sluice(settings, "failed")
    assert job_id in table.stdout
    assert "1 failed job" in table.stdout

    rdb.delete(keys.results(job_id))
    rdb.close()
    retried = sluice(settings, "retry", job_id)
    assert (retried.exit_code, retried.stdout) == (0, f"re-queued {job_id}\n")
    assert sluice(settings, "failed", "--json").stdout == ""
    done = sluice(settings, "watch", job_id, "--interval", "0.1")
    assert done.exit_code == 0
    not_failed = sluice(settings, "retry", job_id)
    assert not_failed.exit_code == 1
    assert "only failed or cancelled" in not_failed.stderr


def test_workers_lists_live_workers(settings: ClientSettings, workers: WorkerFactory) -> None:
    """`sluice workers` shows each live worker's id, pid and pool size; --json typed values."""
    worker = workers(pool_size=1)
    rows = [json.loads(line) for line in sluice(settings, "workers", "--json").stdout.splitlines()]
    assert [(r["pid"], r["pool_size"], r["jobs"]) for r in rows] == [(worker.pid, 1, 0)]
    assert isinstance(rows[0]["started"], float) and isinstance(rows[0]["last_beat"], float)
    assert str(worker.pid) in sluice(settings, "workers").stdout
