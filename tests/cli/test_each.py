"""`sluice enqueue --each`: one job per input, queued in bulk, ids printed as they are queued."""

from __future__ import annotations

import json
from pathlib import Path

from producer.contract.keys import Keys
from producer.redis.typed import SyncRedis
from tests.support.cli import envelope, sluice
from tests.support.workers import WorkerFactory


def test_each_input_becomes_a_job_in_order(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, tmp_path: Path
) -> None:
    """Arguments, then file lines (more than one bulk call's worth): a job each, in order."""
    lines = [f"data:,line{i}" for i in range(2500)]
    path = tmp_path / "inputs.txt"
    path.write_text("# comment\n" + "\n".join(lines) + "\n")
    result = sluice(env, "enqueue", "text-stats", "data:,first", "-f", str(path), "--each")
    assert result.exit_code == 0, result.stderr
    ids = result.stdout.split()
    assert len(ids) == 2501 == len(set(ids))
    assert [envelope(rdb, keys, i)["inputs"] for i in ids] == [[u] for u in ["data:,first", *lines]]
    assert [m.decode() for m in rdb.zrange(keys.queue, 0, -1)] == ids  # they start in order
    assert rdb.hget(keys.job(ids[-1]), "total") == b"1"


def test_each_bad_line_names_it_and_reports_what_was_queued(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, tmp_path: Path
) -> None:
    """A bad input on line 2,501 stops the command there, naming the input; the 2,000 jobs
    queued before its chunk are printed, so none is lost track of."""
    lines = [f"data:,{i}" for i in range(3000)]
    lines[2500] = "no-scheme"
    path = tmp_path / "inputs.txt"
    path.write_text("\n".join(lines))
    result = sluice(env, "enqueue", "text-stats", "-f", str(path), "--each")
    assert result.exit_code == 2
    assert "error: input 2500: 'no-scheme' has no URI scheme" in result.stderr
    printed = result.stdout.split()
    assert len(printed) == 2000 == rdb.zcard(keys.queue)
    assert envelope(rdb, keys, printed[-1])["inputs"] == ["data:,1999"]


def test_each_with_a_job_id_is_a_usage_error(env: dict[str, str]) -> None:
    result = sluice(env, "enqueue", "text-stats", "data:,x", "--each", "--job-id", "one")
    assert result.exit_code == 2
    assert "--job-id" in result.stderr


def test_each_without_inputs_is_refused(env: dict[str, str], rdb: SyncRedis, keys: Keys) -> None:
    result = sluice(env, "enqueue", "text-stats", "--each")
    assert result.exit_code == 2
    assert "error: no inputs" in result.stderr


def test_each_wait_counts_the_endings(env: dict[str, str], workers: WorkerFactory) -> None:
    """With --wait, every job is waited for; exit 1 unless all completed."""
    workers(pipelines="tests.sample_pipelines", job_timeout_s=1)
    args = ["enqueue", "text-stats", "data:,a", "data:,b", "--each", "--wait", "--json"]
    result = sluice(env, *args)
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert len(out["job_ids"]) == 2 and out["states"] == {"complete": 2}
    # jobs that outlast SLUICE_JOB_TIMEOUT_S fail, each alone, at the worker
    failing = sluice(
        env, "enqueue", "test-sleep", "data:,a", "data:,b", "-o", "seconds=4", "--each", "--wait"
    )
    assert failing.exit_code == 1
    assert "2 jobs ended: 2 failed" in failing.stderr


def test_wait_exit_code_says_when_inputs_failed(
    env: dict[str, str], workers: WorkerFactory, tmp_path: Path
) -> None:
    """`--wait` exits 0 when every input was done, 3 when the job completed with failed
    inputs (every one here: a file outside SLUICE_FILE_ROOTS), alone or with --each."""
    workers()
    outside = "file:///etc/hostname"  # the test worker reads files under tmp_path only
    done = sluice(env, "enqueue", "text-stats", "data:,a", "--wait", "--json")
    assert done.exit_code == 0, done.stderr
    failed = sluice(env, "enqueue", "text-stats", outside, outside, "--wait", "--json")
    assert failed.exit_code == 3, failed.stderr
    assert (json.loads(failed.stdout)["state"], json.loads(failed.stdout)["failed"]) == (
        "complete",
        2,
    )
    each = sluice(env, "enqueue", "text-stats", "data:,b", outside, "--each", "--wait")
    assert each.exit_code == 3
    assert "2 jobs ended: 2 complete" in each.stderr
