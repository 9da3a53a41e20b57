"""Running one CLI command: load settings, open a client, turn errors into exit codes.

A bad setting or a job refused as invalid (what the user typed) exits 2, any other Sluice
error 1, each as ``error: <message>`` on stderr: the messages already say what is wrong, so
a traceback would only bury them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import typer
from redis.exceptions import RedisError
from rich.console import Console

from producer.cli.render import render_status
from producer.client import Client
from producer.errors import ConfigError, InvalidJob, SluiceError
from producer.models import JobState, JobStatus
from producer.settings import ClientSettings, load_settings
from producer.wire import dumps


def fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def run(work: Callable[[Client], Awaitable[int]]) -> NoReturn:
    """Run one command with a client; what ``work`` returns is the exit code."""
    try:
        settings = load_settings(ClientSettings)
    except ConfigError as exc:
        fail(str(exc), 2)

    async def with_client() -> int:
        async with Client(settings) as client:
            return await work(client)

    try:
        code = asyncio.run(with_client())
    except InvalidJob as exc:  # a usage error: the pipeline, input, option or id given
        fail(str(exc), 2)
    except SluiceError as exc:
        fail(str(exc), 1)
    except RedisError as exc:
        # the client turns lost connections into ServerUnavailable on most calls; this
        # catches the rest so a dropped server never ends in a traceback
        fail(f"redis: {exc}", 1)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    typer.echo(dumps(data).decode())


def show_status(status: JobStatus, *, as_json: bool, console: Console) -> int:
    """Print the status; the exit code for it: 0 complete, 1 anything else final or not."""
    if as_json:
        print_json(status.as_dict())
    else:
        console.print(render_status(status))
    return 0 if status.state == JobState.COMPLETE else 1
