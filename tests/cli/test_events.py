"""`sluice events` prints the job event stream; `sluice watch` follows a job by it."""

from __future__ import annotations

import _thread
import json
import threading
import time

from producer import ClientSettings, SyncClient
from tests.expected import data_uri
from tests.support.cli import sluice
from tests.support.workers import WorkerFactory


def test_events_prints_each_event_a_line_and_as_json(
    env: dict[str, str], settings: ClientSettings
) -> None:
    """Without --follow it prints what the stream holds and exits 0; --job narrows it;
    --json is one object a line, whose id --since goes on from."""
    with SyncClient(settings) as client:
        first = client.enqueue("text-stats", ["data:,a"])
        second = client.enqueue("text-stats", ["data:,b"], queue="low")
        client.cancel(second)
    text = sluice(env, "events")
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert len(lines) == 3
    assert first in lines[0] and "enqueued" in lines[0] and "default/text-stats" in lines[0]
    assert second in lines[2] and "cancelled" in lines[2] and "low" in lines[2]
    as_json = sluice(env, "events", "--json", "--job", second)
    rows = [json.loads(line) for line in as_json.output.splitlines()]
    assert [(r["job"], r["type"], r["queue"]) for r in rows] == [
        (second, "enqueued", "low"),
        (second, "cancelled", "low"),
    ]
    after = sluice(env, "events", "--json", "--since", rows[0]["id"])
    assert [json.loads(line)["type"] for line in after.output.splitlines()] == ["cancelled"]
    only = sluice(env, "events", "--type", "cancelled")
    assert len(only.output.splitlines()) == 1


def test_events_refuses_a_bad_type_or_since(env: dict[str, str]) -> None:
    """A type that is not one, or a since that is no stream id, is a usage error naming it."""
    bad_type = sluice(env, "events", "--type", "done")
    assert bad_type.exit_code == 2 and "'done' is not an event type" in bad_type.output
    bad_since = sluice(env, "events", "--since", "nope")
    assert bad_since.exit_code != 0 and "is not a stream id" in bad_since.output
    # digits, but past what a stream id holds (64 bits): refused here, not by Redis
    too_big = sluice(env, "events", "--since", "99999999999999999999-0")
    assert too_big.exit_code == 2 and "is not a stream id" in too_big.output


def test_events_refuses_an_id_no_job_can_have(env: dict[str, str]) -> None:
    """--job with an id outside the grammar is a usage error, as for every other command
    (before: no event matched it, and it exited 0 as if the job had none)."""
    result = sluice(env, "events", "--job", "../x")
    assert result.exit_code == 2 and "invalid job id '../x'" in result.output


def test_events_follow_prints_new_events_as_they_come(
    env: dict[str, str], settings: ClientSettings
) -> None:
    """--follow starts from now and prints a job enqueued after it, then ends with Ctrl-C."""
    found: list[str] = []

    def enqueue_later() -> None:
        time.sleep(1.0)
        with SyncClient(settings) as client:
            found.append(client.enqueue("text-stats", ["data:,late"]))
            time.sleep(0.5)
        _thread.interrupt_main()  # Ctrl-C: the follower stops

    threading.Thread(target=enqueue_later, daemon=True).start()
    result = sluice(env, "events", "--follow", "--json")
    [line] = result.output.strip().splitlines()[:1]
    assert json.loads(line)["job"] == found[0]


def test_watch_follows_a_job_run_by_a_worker(
    env: dict[str, str], settings: ClientSettings, workers: WorkerFactory
) -> None:
    """`watch` with a long fallback still ends as soon as the job does: its ending event
    wakes it."""
    workers(pipelines="tests.sample_pipelines")
    with SyncClient(settings) as client:
        job = client.enqueue("test-sleep", [data_uri(b"x")], options={"seconds": 1.0})
    started = time.monotonic()
    result = sluice(env, "watch", job, "--interval", "30")
    assert result.exit_code == 0, result.output
    assert "complete" in result.output
    assert time.monotonic() - started < 20
