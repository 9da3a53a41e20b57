"""A reader of the output that goes away (``sluice ... | head``): every command stops quietly
with the one exit code for it, 141, whether it prints with rich or with ``typer.echo``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from producer.contract.keys import Keys
from producer.redis.typed import SyncRedis
from tests.cli.test_commands import RECORDS, write_results
from tests.conftest import ROOT
from tests.support.cli import sluice


@pytest.mark.parametrize(
    "args",
    [
        ["results", "r"],  # a rich table: rich exited 1 by itself, without a word
        ["results", "r", "--json"],  # echoed lines: click exited 1, without a word
        ["events", "--follow", "--since", "0"],  # would wait for new events for ever
    ],
)
def test_a_closed_pipe_stops_the_command_quietly_with_141(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, args: list[str]
) -> None:
    """stdout a pipe whose read end is closed: exit 141, nothing on stderr, no hang."""
    write_results(rdb, keys, "r", [dict(r) for r in RECORDS])
    assert sluice(env, "enqueue", "text-stats", "data:,a").exit_code == 0  # an event to print
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    child_env.update(env, PYTHONPATH=str(ROOT))
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        done = subprocess.run(
            [sys.executable, "-m", "producer", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=child_env,
            timeout=30,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr.decode()) == (141, "")
