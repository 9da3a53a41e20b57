"""`sluice events`, and the live view of `sluice watch`: both read the job event stream.

The watch redraws when one of the job's events arrives and reads the status then, so it moves
as the job does without a status read every fraction of a second; it also reads the status
at least every ``interval_s``, for a stream that is off (SLUICE_EVENTS_MAXLEN=0) or trimmed.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Annotated

import rich.console
import typer
from rich.live import Live
from rich.text import Text

from producer.cli.arguments import JsonFlag
from producer.cli.render import printable, render_progress
from producer.cli.runner import Console, print_json, run
from producer.client.client import Client
from producer.client.events import NEWEST, OLDEST, check_since
from producer.contract.events import Event, EventType
from producer.contract.models import JobStatus

TYPE_NAMES = [t.value for t in EventType]
COLOURS = {
    EventType.COMPLETED: "green",
    EventType.FAILED: "red",
    EventType.CANCELLED: "magenta",
    EventType.RETRYING: "yellow",
}


def _check_types(values: list[str] | None) -> list[str] | None:
    for value in values or []:
        if value not in TYPE_NAMES:
            raise typer.BadParameter(f"{value!r} is not an event type; one of: {TYPE_NAMES}")
    return values


def _check_since(value: str | None) -> str | None:
    if value is None or value == NEWEST:
        return value
    try:
        return check_since(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc).removeprefix("since: ")) from None


def events(
    job: Annotated[str | None, typer.Option("--job", help="Only this job's events.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events as they come.")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            callback=_check_since,
            help="Print the events after this stream id (an event's id; '0': every one kept; "
            "'$': only new ones). Default: '0', or '$' with --follow.",
        ),
    ] = None,
    types: Annotated[
        list[str] | None,
        typer.Option(
            "--type", callback=_check_types, help=f"Only this type (repeatable): {TYPE_NAMES}."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print job events from the namespace's stream (oldest first), one a line.

    The stream keeps about SLUICE_EVENTS_MAXLEN events; with --json, each is a JSON object
    whose ``id`` can be given to --since to go on from it.
    """
    start = since if since is not None else (NEWEST if follow else OLDEST)

    async def work(client: Client) -> int:
        console = Console(highlight=False)
        stream = client.events(since=start, job_id=job, types=types, follow=follow)
        async for event in stream:
            if as_json:
                print_json(event.model_dump(mode="json", exclude_none=True))
            else:
                console.print(render_event(event))
        return 0

    run(work)


def render_event(event: Event) -> Text:
    """One line: when, the job, the type, its queue and pipeline, then what it says."""
    when = datetime.fromtimestamp(event.at_ms / 1000).strftime("%H:%M:%S.%f")[:-3]
    line = Text(f"{when}  ")
    line.append(printable(event.job), style="bold")
    line.append(f"  {event.type.value:<10}", style=COLOURS.get(event.type, ""))
    where = event.queue + (f"/{event.pipeline}" if event.pipeline else "")
    line.append(f"  {printable(where)}")
    if event.type == EventType.PROGRESS:
        line.append(
            f"  stored {event.stored}/{event.total} (fetched {event.fetched}, "
            f"transformed {event.transformed}, failed {event.failed})"
        )
    elif event.type == EventType.RETRYING and event.delay_ms:
        line.append(f"  unit {event.unit} again in {event.delay_ms / 1000:g} s")
    if event.error and event.type != EventType.CANCELLED:
        line.append(f"  {printable(event.error)}", style="red")
    return line


async def watch(
    client: Client, job_id: str, interval_s: float, console: rich.console.Console
) -> JobStatus:
    """Show live progress until the job is final: redrawn at each of its events, and at least
    every ``interval_s``.

    The display is transient: it is cleared at the end (and never drawn when ``console``
    is not a terminal), so callers print `render_status` of the returned status after it.
    """
    changed = asyncio.Event()

    async def listen() -> None:
        async for _event in client.events(job_id=job_id):
            changed.set()

    listener = asyncio.create_task(listen())
    try:
        status = await client.status(job_id)
        view = Live(render_progress(status), console=console, transient=True, auto_refresh=False)
        with view as live:
            while not status.state.is_final:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), interval_s)
                changed.clear()
                status = await client.status(job_id)
                live.update(render_progress(status), refresh=True)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    return status
