"""Human output never lets a value it did not write drive the terminal: escape sequences,
carriage returns and bidirectional overrides in ids, inputs and errors are shown escaped;
``--json`` keeps them as they are."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from producer.cli.render import CONTROLS, printable
from producer.contract.keys import Keys
from producer.contract.wire import dumps, now_ms
from producer.redis.typed import SyncRedis
from tests.support.cli import sluice

ACTING = {chr(c) for c in CONTROLS} - {"\n"}  # a newline ends a line of output, nothing more
EVIL = "\x1b[2J\x1b]0;pwned\x07\r\u202e\x9b31m"


def acting(output: str) -> set[str]:
    """The characters in ``output`` a terminal would act on."""
    return set(output) & ACTING


@given(st.text())
def test_printable_leaves_nothing_a_terminal_acts_on(text: str) -> None:
    """Whatever the text, its printable form holds no control, separator or override, and
    text without any is left as it was."""
    shown = printable(text)
    assert not acting(shown) and "\n" not in shown
    if not set(text) & (ACTING | {"\n"}):
        assert shown == text


def write_hostile_job(rdb: SyncRedis, keys: Keys, job_id: str) -> None:
    """A failed job, its records and a worker, every text field carrying escape sequences."""
    text = {"pipeline": f"p{EVIL}", "error": f"boom{EVIL}", "worker": f"w{EVIL}"}
    rdb.hset(keys.job(job_id), mapping={"state": "failed", "total": "2", "failed": "1", **text})
    rdb.zadd(keys.failed, {job_id: now_ms()})
    bad = {"index": 0, "input": f"data:,{EVIL}", "ok": False, "error": f"e{EVIL}"}
    good = {"index": 1, "input": "data:,y", "ok": True, "result": {"text": EVIL}}
    rdb.hset(keys.results(job_id), mapping={"0": dumps(bad), "1": dumps(good)})
    rdb.zadd(keys.workers, {f"wk{EVIL}": now_ms()})
    rdb.hset(keys.worker(f"wk{EVIL}"), mapping={"id": f"wk{EVIL}", "host": f"[red]h{EVIL}"})


def test_human_output_shows_escape_sequences_escaped(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, job_id: str
) -> None:
    """status, results, failed and workers print every hostile field, escaped."""
    write_hostile_job(rdb, keys, job_id)
    for command in (["status", job_id], ["results", job_id], ["failed"], ["workers"]):
        done = sluice(env, *command)
        assert done.exit_code in (0, 1), (command, done.stderr)
        assert not acting(done.stdout + done.stderr), command
        assert "\\x1b" in done.stdout, command
    workers = sluice({**env, "COLUMNS": "400"}, "workers").stdout
    assert "[red]h" in workers  # shown as written, not taken for rich markup


def test_errors_naming_a_hostile_id_are_escaped(env: dict[str, str]) -> None:
    """An error that names the id given on the command line shows it escaped (an id no job
    can have is a usage error: exit 2)."""
    done = sluice(env, "cancel", f"no-such{EVIL}")
    assert done.exit_code == 2 and "invalid job id" in done.stderr
    assert not acting(done.stdout + done.stderr) and "no-such\\x1b" in done.stderr


def test_json_output_keeps_the_values_as_stored(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, job_id: str
) -> None:
    """--json is for programs: the stored text comes back unchanged."""
    write_hostile_job(rdb, keys, job_id)
    status = json.loads(sluice(env, "status", job_id, "--json").stdout)
    assert status["error"] == f"boom{EVIL}"
    lines = sluice(env, "results", job_id, "--json").stdout.splitlines()
    assert json.loads(lines[0])["input"] == f"data:,{EVIL}"
