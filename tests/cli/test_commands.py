"""The `sluice` CLI against a real server: every verb, its JSON shapes, exit codes and errors."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from producer import JobState
from producer.cli.enqueue import parse_options, stream_inputs
from producer.contract.keys import Keys
from producer.contract.wire import dumps
from producer.redis.typed import SyncRedis
from tests.conftest import ROOT
from tests.expected import data_uri, text_stats
from tests.support.cli import envelope, sluice
from tests.support.servers import free_port
from tests.support.workers import WorkerFactory

STATUS_KEYS = {
    "job_id",
    "state",
    "pipeline",
    "total",
    "fetched",
    "transformed",
    "stored",
    "failed",
    "error",
    "attempts",
    "worker",
    "enqueued_at",
    "started_at",
    "finished_at",
    "stages",
    "elapsed_s",
    "bottleneck",
}


def stored_inputs(rdb: SyncRedis, keys: Keys, job_id: str) -> list[str]:
    """A job's inputs, whether sent inline or streamed to its inputs list."""
    inline = envelope(rdb, keys, job_id).get("inputs")
    if inline is not None:
        return list(inline)
    return [raw.decode() for raw in rdb.lrange(keys.inputs(job_id), 0, -1)]


def write_results(rdb: SyncRedis, keys: Keys, job_id: str, records: list[dict[str, Any]]) -> None:
    """Store records and blobs in the worker's format (see worker/stages/store.py); complete."""
    for record in records:
        blob = record.pop("_bytes", None)
        rdb.hset(keys.results(job_id), str(record["index"]), dumps(record))
        if blob is not None:
            rdb.hset(keys.blobs(job_id), str(record["index"]), blob)
    failed = sum(1 for r in records if not r["ok"])
    rdb.hset(
        keys.job(job_id),
        mapping={
            "state": "complete",
            "pipeline": "thumbnail",
            "total": len(records),
            "stored": len(records),
            "failed": failed,
        },
    )


RECORDS: list[dict[str, Any]] = [
    {
        "index": 0,
        "input": "data:,a",
        "ok": True,
        "result": {"w": 10},
        "blob": "png",
        "timings": {"fetch_s": 0.1, "transform_s": 0.2},
        "_bytes": b"\x89PNG zero",
    },
    {
        "index": 1,
        "input": "https://x/[bold]1[/]",
        "ok": False,
        "error": "HTTP 404 [not] found",
        "timings": {"fetch_s": 0.1},
    },
    {
        "index": 2,
        "input": "data:,c",
        "ok": True,
        "result": {"w": 12},
        "blob": "../../evil",
        "timings": {"fetch_s": 0.1, "transform_s": 0.3},
        "_bytes": b"two",
    },
]


def test_enqueue_prints_the_job_id_and_queues_the_inputs(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, job_id: str
) -> None:
    """Inputs given as arguments are queued in order under the id printed."""
    result = sluice(env, "enqueue", "text-stats", "data:,a", "data:,b", "--job-id", job_id)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{job_id}\n"
    assert envelope(rdb, keys, job_id)["pipeline"] == "text-stats"
    assert stored_inputs(rdb, keys, job_id) == ["data:,a", "data:,b"]
    assert rdb.zscore(keys.queue, job_id) is not None


def test_enqueue_parses_option_values_as_json_or_keeps_strings(
    env: dict[str, str], rdb: SyncRedis, keys: Keys
) -> None:
    """--option values that are valid JSON become JSON values; anything else stays a string."""
    pairs = [
        "size=64",
        "ratio=0.5",
        "flag=true",
        'box={"w": 2}',
        "name=plain",
        "eq=a=b",
        "empty=",
        "nan=NaN",
        'quoted="7"',
    ]
    args = [arg for pair in pairs for arg in ("-o", pair)]
    result = sluice(env, "enqueue", "thumbnail", "data:,x", *args, "--json")
    assert result.exit_code == 0, result.stderr
    job_id = json.loads(result.stdout)["job_id"]
    assert envelope(rdb, keys, job_id)["options"] == {
        "size": 64,
        "ratio": 0.5,
        "flag": True,
        "box": {"w": 2},
        "name": "plain",
        "eq": "a=b",
        "empty": "",
        "nan": "NaN",
        "quoted": "7",
    }


def test_parse_options_refuses_a_pair_without_a_key_or_equals() -> None:
    """A malformed pair is refused with a message naming it."""
    with pytest.raises(ValueError, match="'=3'"):
        parse_options(["=3"])


def test_enqueue_malformed_option_is_a_usage_error(
    env: dict[str, str], rdb: SyncRedis, keys: Keys
) -> None:
    """A --option without '=' exits 2 naming it, and nothing is queued."""
    result = sluice(env, "enqueue", "text-stats", "data:,x", "-o", "novalue")
    assert result.exit_code == 2
    assert "novalue" in result.stderr and "KEY=VALUE" in result.stderr
    assert rdb.zcard(keys.queue) == 0


def test_enqueue_an_option_nested_too_deep_is_a_usage_error(
    env: dict[str, str], rdb: SyncRedis, keys: Keys
) -> None:
    """A --option value nested past the options' depth limit exits 2 naming it, however deep:
    past a thousand levels json.loads raised RecursionError, a traceback and exit 1."""
    levels = 100_000
    for deep in ("[" * levels + "]" * levels, '{"a":' * levels + "1" + "}" * levels):
        result = sluice(env, "enqueue", "text-stats", "data:,x", "-o", f"box={deep}")
        assert result.exit_code == 2, result.stderr
        assert "nested deeper than 200 levels" in result.stderr
    assert rdb.zcard(keys.queue) == 0


def test_enqueue_an_option_key_of_bytes_not_utf8_is_a_usage_error(
    env: dict[str, str], rdb: SyncRedis, keys: Keys
) -> None:
    """A --option whose key is not UTF-8 (a shell's $'\\xff', read by Python as a lone
    surrogate) exits 2 naming the key, as a value of such bytes does; it was a traceback
    and exit 1, from the encoder, with the key let through to the envelope."""
    for pair in ("\udcff=1", "a\udcffb=1", 'box={"\\udcff": 1}'):
        result = sluice(env, "enqueue", "text-stats", "data:,x", "-o", pair)
        assert result.exit_code == 2, (pair, result.stderr)
        assert "lone surrogate" in result.stderr and "Traceback" not in result.stderr
    assert rdb.zcard(keys.queue) == 0


def test_enqueue_from_file_streams_thousands_of_lines_after_the_arguments(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, tmp_path: Path
) -> None:
    """File inputs follow the argument inputs in order; blanks and # comments are skipped."""
    lines = [f"data:,line{i}" for i in range(4500)]
    path = tmp_path / "inputs.txt"
    body = ["# a comment", "", *lines[:2000], "   ", "  # indented comment", *lines[2000:]]
    path.write_text("\n".join(body) + "\n")
    result = sluice(env, "enqueue", "text-stats", "data:,first", "-f", str(path), "--json")
    assert result.exit_code == 0, result.stderr
    job_id = json.loads(result.stdout)["job_id"]
    assert stored_inputs(rdb, keys, job_id) == ["data:,first", *lines]
    assert rdb.hget(keys.job(job_id), "total") == b"4501"
    assert "4,501" in result.stderr  # the progress count of inputs read


def test_enqueue_reads_inputs_from_stdin(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, job_id: str
) -> None:
    """`--from-file -` reads inputs from standard input."""
    stdin = "data:,x\n# skipped\n\ndata:,y\n"
    result = sluice(
        env, "enqueue", "text-stats", "--from-file", "-", "--job-id", job_id, input=stdin
    )
    assert result.exit_code == 0, result.stderr
    assert stored_inputs(rdb, keys, job_id) == ["data:,x", "data:,y"]


def test_enqueue_from_a_missing_file_is_a_usage_error(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unreadable --from-file exits 2 naming the file."""
    # a name relative to the test's own directory: the error box is 80 columns wide, and a
    # long absolute path (a pytest-xdist worker's tmp_path is) is cut short inside it
    monkeypatch.chdir(tmp_path)
    result = sluice(env, "enqueue", "text-stats", "-f", "nope.txt")
    assert result.exit_code == 2
    assert "nope.txt" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad Name", "data:,x"], "pipeline"),
        (["text-stats", "no-scheme"], "input 0: 'no-scheme' has no URI scheme"),
        (["text-stats"], "at least one input"),
        (["text-stats", "data:,x", "--job-id", "bad id!"], "invalid job id"),
        (["text-stats", "data:,x", "--job-id", "v2:results"], "invalid job id 'v2:results'"),
    ],
)
def test_enqueue_refusals_exit_2_with_the_message(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, args: list[str], message: str
) -> None:
    """A refused job is a usage error: `error: <why>` on stderr, no traceback, exit 2, nothing
    queued."""
    result = sluice(env, "enqueue", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "Traceback" not in result.output
    assert rdb.zcard(keys.queue) == 0


def test_enqueue_bad_line_deep_in_a_file_is_refused(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, tmp_path: Path
) -> None:
    """A bad input on line 2,501 of a file is refused naming its index; nothing is queued."""
    lines = [f"data:,{i}" for i in range(3000)]
    lines[2500] = "no-scheme"
    path = tmp_path / "inputs.txt"
    path.write_text("\n".join(lines))
    result = sluice(env, "enqueue", "text-stats", "-f", str(path))
    assert result.exit_code == 2
    assert "error: input 2500: 'no-scheme'" in result.stderr
    assert rdb.zcard(keys.queue) == 0


def test_enqueue_duplicate_job_id_exits_1(env: dict[str, str], job_id: str) -> None:
    """A second job with an id in use is refused, naming the id."""
    assert sluice(env, "enqueue", "text-stats", "data:,x", "--job-id", job_id).exit_code == 0
    result = sluice(env, "enqueue", "text-stats", "data:,y", "--job-id", job_id)
    assert result.exit_code == 1
    assert f"error: job {job_id} already exists" in result.stderr


async def test_stream_inputs_reads_ahead_only_a_bounded_number_of_chunks() -> None:
    """The reader thread stops pulling lines while the queue is full: memory stays bounded."""
    pulled = 0

    def endless() -> Iterator[str]:
        nonlocal pulled
        while True:
            pulled += 1
            yield f"data:,{pulled}\n"

    stream = stream_inputs(endless(), chunk_lines=100, queued_chunks=3)
    first = await anext(stream)
    await asyncio.sleep(0.3)  # give the thread every chance to read too far
    assert first == "data:,1"
    # the chunk being consumed, 3 queued, and at most one read while waiting for a slot
    assert pulled <= 5 * 100
    await stream.aclose()


def test_status_json_has_the_documented_keys(env: dict[str, str], job_id: str) -> None:
    """`status --json` prints JobStatus.as_dict(): the state, pipeline, counts and stages."""
    assert (
        sluice(env, "enqueue", "text-stats", "data:,a", "data:,b", "--job-id", job_id).exit_code
        == 0
    )
    result = sluice(env, "status", job_id, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= STATUS_KEYS
    assert (data["job_id"], data["state"], data["pipeline"], data["total"]) == (
        job_id,
        "queued",
        "text-stats",
        2,
    )
    assert set(data["stages"]) == {"fetch", "transform", "store"}


def test_status_table_shows_counts_and_marks_the_bottleneck(
    env: dict[str, str], rdb: SyncRedis, keys: Keys
) -> None:
    """The table shows the state, counts, error and a stage table marking the slowest stage."""
    now = time.time()
    rdb.hset(
        keys.job("tb"),
        mapping={
            "state": "complete",
            "pipeline": "text-stats",
            "total": 10,
            "fetched": 10,
            "transformed": 10,
            "stored": 10,
            "failed": 3,
            "started_at": now - 4,
            "finished_at": now,
            "fetch_count": 10,
            "fetch_s": 1.5,
            "transform_count": 10,
            "transform_s": 7.25,
            "store_count": 10,
            "store_s": 0.1,
        },
    )
    result = sluice(env, "status", "tb")
    assert result.exit_code == 0
    out = result.stdout
    assert "complete" in out and "text-stats" in out and "10 total" in out
    assert "stored 10" in out and "4.00 s" in out
    [marked] = [line for line in out.splitlines() if "bottleneck" in line]
    assert marked.split()[:2] == ["│", "transform"]
    assert "7.250" in marked and "0.7250" in marked


@pytest.mark.parametrize("as_json", [True, False])
def test_status_of_an_unknown_job_prints_not_found_and_exits_1(
    env: dict[str, str], as_json: bool
) -> None:
    """An unknown id is reported as not_found, with exit code 1."""
    result = sluice(env, "status", "ghost", *(["--json"] if as_json else []))
    assert result.exit_code == 1
    if as_json:
        assert json.loads(result.stdout)["state"] == "not_found"
    else:
        assert "not_found" in result.stdout


def test_stats_json_counts_ready_and_deferred_jobs(env: dict[str, str]) -> None:
    """`stats --json` numbers follow the queue: ready and deferred jobs are counted apart."""
    before = json.loads(sluice(env, "stats", "--json").stdout)
    assert before == {
        "ready": 0,
        "deferred": 0,
        "in_progress": 0,
        "failed": 0,
        "workers": 0,
        "oldest_ready_age_s": 0.0,
        "ready_units": 0,
        "held_units": 0,
        "queues": {
            "default": {"ready": 0, "deferred": 0, "oldest_ready_age_s": 0.0, "ready_units": 0}
        },
    }
    sluice(env, "enqueue", "text-stats", "data:,1")
    sluice(env, "enqueue", "text-stats", "data:,2", "--queue", "bulk")
    sluice(env, "enqueue", "text-stats", "data:,3", "--defer", "60")
    after = json.loads(sluice(env, "stats", "--json").stdout)
    assert after.pop("oldest_ready_age_s") >= 0
    queues = after.pop("queues")
    assert after == {
        "ready": 2,
        "deferred": 1,
        "in_progress": 0,
        "failed": 0,
        "workers": 0,
        "ready_units": 2,
        "held_units": 0,
    }
    assert {name: (q["ready"], q["deferred"]) for name, q in queues.items()} == {
        "default": (1, 1),
        "bulk": (1, 0),
    }
    rows = sluice(env, "stats").stdout.splitlines()
    assert [line.split()[-1] for line in rows[:5]] == ["2", "1", "0", "0", "0"]
    assert rows[5].startswith("oldest ready")
    assert [line.split()[-1] for line in rows[6:8]] == ["2", "0"]
    assert [line.split()[:4] for line in rows[9:]] == [
        ["queue", "default", "1", "ready,"],
        ["queue", "bulk", "1", "ready,"],
    ]


def test_results_json_lines_in_input_order(env: dict[str, str], rdb: SyncRedis, keys: Keys) -> None:
    """`results --json` prints one ItemResult.as_line() per record; --failed-only filters."""
    write_results(rdb, keys, "r", [dict(r) for r in RECORDS])
    result = sluice(env, "results", "r", "--json")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["index"] for line in lines] == [0, 1, 2]
    assert lines[0] == {
        "index": 0,
        "input": "data:,a",
        "ok": True,
        "result": {"w": 10},
        "blob": "png",
        "timings": {"fetch_s": 0.1, "transform_s": 0.2},
    }
    assert lines[1]["error"] == "HTTP 404 [not] found" and "result" not in lines[1]
    failed = sluice(env, "results", "r", "--json", "--failed-only").stdout.splitlines()
    assert [json.loads(line)["index"] for line in failed] == [1]


def test_results_table_shows_data_literally(
    env: dict[str, str], rdb: SyncRedis, keys: Keys
) -> None:
    """The table lists each record; brackets in inputs and errors are not taken for markup."""
    write_results(rdb, keys, "rt", [dict(r) for r in RECORDS])
    out = sluice(env, "results", "rt").stdout
    rows = [line for line in out.splitlines() if line.strip()]
    assert rows[0].split() == ["index", "input", "ok", "result", "/", "error"]
    assert "✓" in rows[1] and '{"w":10}' in rows[1]
    assert "✗" in rows[2] and "https://x/[bold]1[/]" in rows[2]
    assert "HTTP 404 [not] found" in rows[2]
    assert len(rows) == 4


def test_results_output_writes_one_file_per_blob(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, tmp_path: Path
) -> None:
    """--output writes each blob as {index:06d}.{ext}; an unsafe extension becomes .bin."""
    write_results(rdb, keys, "ro", [dict(r) for r in RECORDS])
    out_dir = tmp_path / "out" / "thumbs"
    result = sluice(env, "results", "ro", "--output", str(out_dir))
    assert result.exit_code == 0, result.stderr
    assert "wrote 2 files" in result.stdout
    assert sorted(p.name for p in out_dir.iterdir()) == ["000000.png", "000002.bin"]
    assert (out_dir / "000000.png").read_bytes() == b"\x89PNG zero"
    assert not list(tmp_path.glob("**/evil*"))


def test_results_output_reads_blobs_a_page_at_a_time(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, tmp_path: Path
) -> None:
    """250 blobs (one of them named but never stored) are read in 3 HMGETs, not 250 HGETs."""
    records: list[dict[str, Any]] = [
        {
            "index": i,
            "input": f"data:,{i}",
            "ok": True,
            "result": {},
            "blob": "png",
            "_bytes": f"blob {i}".encode(),
        }
        for i in range(250)
    ]
    del records[7]["_bytes"]  # its record names a blob that is not there
    write_results(rdb, keys, "many", records)
    rdb.config_resetstat()
    result = sluice(env, "results", "many", "--output", str(tmp_path / "many"))
    assert result.exit_code == 0, result.stderr
    assert "wrote 249 files" in result.stdout
    assert (tmp_path / "many" / "000249.png").read_bytes() == b"blob 249"
    assert not (tmp_path / "many" / "000007.png").exists()
    calls = rdb.info("commandstats")
    assert calls["cmdstat_hmget"]["calls"] == 1 + 3  # the records' page, then 3 blob pages
    assert "cmdstat_hget" not in calls or calls["cmdstat_hget"]["calls"] <= 1  # the total


def test_results_of_an_unknown_job_exits_1(env: dict[str, str]) -> None:
    """Asking for the results of a job that does not exist is an error, not an empty list."""
    result = sluice(env, "results", "ghost", "--json")
    assert result.exit_code == 1
    assert result.stdout == "" and "error: no job ghost" in result.stderr


def finish_later(rdb: SyncRedis, keys: Keys, job_id: str, state: str, delay_s: float) -> Any:
    """From another thread, mark the job final after a delay, as a worker would."""

    def finish() -> None:
        time.sleep(delay_s)
        fields: dict[str, str | float] = {
            "state": state,
            "total": 1,
            "stored": 1,
            "finished_at": time.time(),
        }
        rdb.hset(keys.job(job_id), mapping={**fields, "error": "boom" if state == "failed" else ""})

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


@pytest.mark.parametrize(("state", "code"), [("complete", 0), ("failed", 1), ("cancelled", 1)])
def test_watch_ends_when_the_job_ends(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, job_id: str, state: str, code: int
) -> None:
    """`watch` polls until the job is final, prints its status, and exits 0 only if complete."""
    assert sluice(env, "enqueue", "text-stats", "data:,x", "--job-id", job_id).exit_code == 0
    thread = finish_later(rdb, keys, job_id, state, 0.6)
    start = time.monotonic()
    result = sluice(env, "watch", job_id, "--interval", "0.05")
    thread.join()
    assert time.monotonic() - start >= 0.6
    assert result.exit_code == code
    assert state in result.stdout and "stage timings" in result.stdout


def test_watch_of_an_unknown_job_exits_1(env: dict[str, str]) -> None:
    """Watching an id that does not exist ends at once with exit code 1."""
    result = sluice(env, "watch", "ghost")
    assert result.exit_code == 1
    assert "not_found" in result.stdout


@pytest.mark.parametrize("as_json", [True, False])
def test_enqueue_wait_prints_the_final_status(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, job_id: str, as_json: bool
) -> None:
    """`enqueue --wait` returns once the job ends and prints its status (one JSON object)."""
    thread = finish_later(rdb, keys, job_id, "complete", 0.5)
    flags = ["--json"] if as_json else []
    result = sluice(env, "enqueue", "text-stats", "data:,x", "--job-id", job_id, "--wait", *flags)
    thread.join()
    assert result.exit_code == 0, result.stderr
    if as_json:
        data = json.loads(result.stdout)
        assert (data["job_id"], data["state"]) == (job_id, "complete")
    else:
        assert result.stdout.startswith(f"{job_id}\n") and "complete" in result.stdout


def test_bad_setting_exits_2_naming_it(env: dict[str, str]) -> None:
    """A setting with a bad value prints the ConfigError naming it and exits 2."""
    result = sluice({**env, "SLUICE_MAX_QUEUED_JOBS": "-1"}, "stats")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid setting SLUICE_MAX_QUEUED_JOBS")


def test_unreachable_server_is_an_error_not_a_traceback(env: dict[str, str]) -> None:
    """With no server at the URL, each command says so and exits 1 (enqueue after trying for
    SLUICE_ENQUEUE_TIMEOUT_S)."""
    down = {
        **env,
        "SLUICE_REDIS_URL": f"redis://127.0.0.1:{free_port()}",
        "SLUICE_ENQUEUE_TIMEOUT_S": "0.3",
    }
    for args in (["stats"], ["status", "x"], ["results", "x"], ["enqueue", "text-stats", "data:,"]):
        result = sluice(down, *args)
        assert result.exit_code == 1, args
        assert result.stderr.startswith("error: cannot reach Redis at redis://127.0.0.1:"), args


def run_module(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m producer ...` as a real process, with no stray SLUICE_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    return subprocess.run(
        [sys.executable, "-m", "producer", *args],
        env={**clean, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_python_m_producer_is_the_cli(env: dict[str, str]) -> None:
    """As a real process: --version, enqueue --json, then status --json of that job."""
    version = run_module(env, "--version")
    assert version.returncode == 0 and version.stdout.startswith("sluice ")
    enqueued = run_module(env, "enqueue", "text-stats", "data:,x", "-o", "k=1", "--json")
    assert enqueued.returncode == 0, enqueued.stderr
    job_id = json.loads(enqueued.stdout)["job_id"]
    status = run_module(env, "status", job_id, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"] == JobState.QUEUED
    missing = run_module(env, "status", "ghost")
    assert missing.returncode == 1 and "not_found" in missing.stdout


def test_enqueue_wait_then_results_through_a_real_worker(
    env: dict[str, str], workers: WorkerFactory
) -> None:
    """End to end: a text-stats job runs on a real worker; its results match the spec."""
    workers()
    docs = [b"one two two", b"three three three"]
    args = [data_uri(doc) for doc in docs]
    waited = sluice(env, "enqueue", "text-stats", *args, "--wait", "--json")
    assert waited.exit_code == 0, waited.stderr
    status = json.loads(waited.stdout)
    assert (status["state"], status["stored"], status["failed"]) == ("complete", 2, 0)
    lines = sluice(env, "results", status["job_id"], "--json").stdout.splitlines()
    assert [json.loads(line)["result"] for line in lines] == [text_stats(d) for d in docs]
