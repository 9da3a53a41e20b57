"""Running one CLI command: load settings, open a client, turn errors into exit codes.

A bad setting or a job refused as invalid (what the user typed) exits 2, any other Sluice
error 1, each as ``error: <message>`` on stderr: the messages already say what is wrong, so
a traceback would only bury them. Ctrl-C exits 130 at once, after the command's own cleanups.
A reader of the output that goes away (``sluice results JOB | head -2``) stops the command
quietly with 141, whichever command and whichever way it writes (`Console` or ``typer.echo``).
"""

from __future__ import annotations

import asyncio
import errno
import os
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NoReturn, TypeVar

import typer
from redis.exceptions import RedisError
from rich import console

from producer.cli.render import printable, render_status
from producer.client.client import Client
from producer.contract.errors import ConfigError, InvalidJob, SluiceError
from producer.contract.models import JobState, JobStatus
from producer.contract.settings import ClientSettings, load_settings
from producer.contract.wire import dumps

INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
READER_GONE = 141  # 128 + SIGPIPE, as a shell reports a command whose pipe's reader left


class Console(console.Console):
    """rich's Console for every command's output: a reader gone away is a BrokenPipeError,
    stopped by `run` as a ``typer.echo`` that hits it is (rich's own way exits 1 itself)."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(errno.EPIPE, "the reader of the output went away")


def reader_gone() -> NoReturn:
    """Stop quietly: what is left to print, and the last flush at exit, go nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    raise typer.Exit(READER_GONE)


def fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {printable(message, keep_newlines=True)}", err=True)
    raise typer.Exit(code)


S = TypeVar("S", bound=ClientSettings)


def settings_or_exit(cls: type[S]) -> S:
    """The settings, or exit 2 naming every bad one."""
    try:
        return load_settings(cls)
    except ConfigError as exc:
        fail(str(exc), 2)


def run(
    work: Callable[[Client], Awaitable[int]], settings: ClientSettings | None = None
) -> NoReturn:
    """Run one command with a client (made with ``settings``, by default the shared ones read
    now); what ``work`` returns is the exit code."""
    if settings is None:
        settings = settings_or_exit(ClientSettings)

    async def with_client() -> int:
        async with Client(settings) as client:
            return await work(client)

    try:
        code = asyncio.run(with_client())
    except BrokenPipeError:  # click would exit 1 without a word, as if it were an error
        reader_gone()
    except KeyboardInterrupt:
        # asyncio.run cancelled the command's task first, so its cleanups ran (a job whose
        # inputs were half streamed to Redis is removed); the reader thread is a daemon
        fail("interrupted", INTERRUPTED)
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


# The exit code of a command that waited for jobs to end (`enqueue --wait`, `watch`).
DONE, NOT_COMPLETE, INPUTS_FAILED = 0, 1, 3


def ending_code(statuses: Iterable[JobStatus]) -> int:
    """0 every job complete with every input done, 3 every job complete but some inputs
    failed, 1 a job that did not complete (failed, cancelled, not found or still running)."""
    statuses = list(statuses)
    if any(status.state != JobState.COMPLETE for status in statuses):
        return NOT_COMPLETE
    return INPUTS_FAILED if any(status.failed for status in statuses) else DONE


def show_status(status: JobStatus, *, as_json: bool, console: Console) -> int:
    """Print the status; the exit code for it (see `ending_code`)."""
    if as_json:
        print_json(status.as_dict())
    else:
        console.print(render_status(status))
    return ending_code([status])
