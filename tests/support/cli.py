"""Running the `sluice` CLI in-process, and reading what it queued."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner, Result

from producer.cli.app import app
from producer.contract.keys import Keys
from producer.contract.wire import loads
from producer.redis.typed import SyncRedis


def sluice(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    """Run the CLI in-process, with stdout and stderr captured apart."""
    return CliRunner().invoke(app, list(args), env=env, input=input, catch_exceptions=False)


def envelope(rdb: SyncRedis, keys: Keys, job_id: str) -> dict[str, Any]:
    """The arguments of the queued arq job (pipeline, inputs, options)."""
    kwargs: dict[str, Any] = loads(rdb.hget(keys.job(job_id), "envelope") or b"")["k"]
    return kwargs
