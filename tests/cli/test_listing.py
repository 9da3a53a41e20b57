"""The CLI's verbs over many jobs against a real server: jobs, delete, purge, pipelines."""

from __future__ import annotations

import json

from producer.contract.keys import Keys
from producer.redis.typed import SyncRedis
from tests.support.cli import sluice
from tests.support.workers import WorkerFactory


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_jobs_lists_filters_and_searches(env: dict[str, str], workers: WorkerFactory) -> None:
    """`sluice jobs` lists newest first; --state, --pipeline, --queue and --search narrow it
    down; a deferred job of a named queue reads deferred, its queue and priority shown."""
    for job_id, args in [
        ("lst-a", ["text-stats", "data:,a"]),
        ("lst-b", ["thumbnail", "data:,b", "--queue", "bulk", "--priority", "3"]),
    ]:
        assert sluice(env, "enqueue", *args, "--job-id", job_id, "--defer", "3600").exit_code == 0
    assert sluice(env, "cancel", "lst-a").exit_code == 0

    every = json_lines(sluice(env, "jobs", "--json").stdout)
    assert [(j["job_id"], j["state"]) for j in every] == [
        ("lst-b", "deferred"),
        ("lst-a", "cancelled"),
    ]
    cancelled = sluice(env, "jobs", "--state", "cancelled", "--json").stdout
    assert [j["job_id"] for j in json_lines(cancelled)] == ["lst-a"]
    thumbs = sluice(env, "jobs", "--pipeline", "thumbnail", "--json").stdout
    assert [j["job_id"] for j in json_lines(thumbs)] == ["lst-b"]
    bulk = json_lines(sluice(env, "jobs", "--queue", "bulk", "--json").stdout)
    assert [(j["job_id"], j["queue"], j["priority"]) for j in bulk] == [("lst-b", "bulk", 3)]
    shown = sluice(env, "status", "lst-b").stdout
    assert "bulk, priority 3" in shown
    assert [j["job_id"] for j in json_lines(sluice(env, "jobs", "-q", "T-A", "--json").stdout)] == [
        "lst-a"
    ]
    table = sluice(env, "jobs", "--limit", "1")
    assert table.exit_code == 0
    assert "2 job(s), the newest 1" in table.stdout and "lst-b" in table.stdout
    assert "lst-a" not in table.stdout


def test_jobs_refuses_an_unknown_state(env: dict[str, str]) -> None:
    """A --state that is no state is a usage error listing the states."""
    result = sluice(env, "jobs", "--state", "sleeping")
    assert result.exit_code == 2
    assert "'sleeping' is not a state" in result.stderr and "cancelled" in result.stderr


def test_delete_removes_an_ended_job_and_refuses_a_live_one(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, job_id: str
) -> None:
    """A queued job is refused (exit 1, cancel first); once cancelled it is deleted, keys gone."""
    assert sluice(env, "enqueue", "text-stats", "data:,x", "--job-id", job_id).exit_code == 0
    live = sluice(env, "delete", job_id)
    assert live.exit_code == 1 and "cancel it before deleting it" in live.stderr
    assert sluice(env, "cancel", job_id).exit_code == 0
    deleted = sluice(env, "delete", job_id)
    assert (deleted.exit_code, deleted.stdout) == (0, f"deleted {job_id}\n")
    assert not rdb.exists(keys.job(job_id), Keys().arq_job(job_id))
    again = sluice(env, "delete", job_id)
    assert again.exit_code == 1 and f"no job {job_id}" in again.stderr


def test_purge_failed_deletes_the_failed_set(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, workers: WorkerFactory
) -> None:
    """`sluice purge --failed` deletes every failed job; without --failed it is a usage error."""
    assert sluice(env, "purge").exit_code == 2
    for job_id in ("purge-1", "purge-2"):
        assert sluice(env, "enqueue", "text-stats", "data:,a", "--job-id", job_id).exit_code == 0
        rdb.set(keys.results(job_id), "not a hash")  # every try of it errors
    workers(max_tries=1)
    assert sluice(env, "watch", "purge-2", "--interval", "0.1").exit_code == 1
    assert sluice(env, "watch", "purge-1", "--interval", "0.1").exit_code == 1
    assert len(json_lines(sluice(env, "failed", "--json").stdout)) == 2
    purged = sluice(env, "purge", "--failed")
    assert (purged.exit_code, purged.stdout) == (0, "deleted 2 failed job(s)\n")
    assert sluice(env, "failed", "--json").stdout == ""
    assert not any(rdb.zcard(k.failed) for k in keys.every_shard())
    assert not rdb.exists(keys.job("purge-1"))


def test_pipelines_lists_what_workers_registered(
    env: dict[str, str], workers: WorkerFactory
) -> None:
    """`sluice pipelines` shows the built-in pipelines with their options; --json the schema."""
    workers()
    registered = json.loads(sluice(env, "pipelines", "--json").stdout)
    assert {"text-stats", "thumbnail"} <= set(registered)
    assert "width" in registered["thumbnail"]["options"]["properties"]
    table = sluice(env, "pipelines")
    assert table.exit_code == 0
    assert "thumbnail" in table.stdout and "width: integer = 256" in table.stdout
