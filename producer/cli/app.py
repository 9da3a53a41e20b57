"""The `sluice` command line: enqueue jobs, inspect their status and results, watch them run.

Settings come from ``SLUICE_*`` variables and ``.env`` as for the client. Exit codes:
0 done, 1 a Sluice error (or a job that did not complete, where a command says so),
2 a usage error or a bad setting, 3 a job waited for completed but some of its inputs failed,
130 interrupted, 141 the reader of the output went away (``| head``).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from producer.cli import control, schedules
from producer.cli import jobs as listing
from producer.cli.arguments import JobIdArg, JsonFlag
from producer.cli.enqueue import (
    OptionError,
    enqueue_each,
    enqueue_streamed,
    open_inputs,
    parse_options,
)
from producer.cli.events import events, watch
from producer.cli.render import render_stats
from producer.cli.results import show_results
from producer.cli.runner import Console, ending_code, fail, print_json, run, show_status
from producer.client.client import Client
from producer.contract.errors import ConfigError, InvalidJob, SluiceError
from producer.contract.models import MAX_PRIORITY, JobState
from producer.contract.settings import load_settings
from producer.contract.validation import check_defer
from producer.contract.version import sluice_version
from producer.dashboard.settings import DashboardSettings
from producer.redis.connection import server_label

app = typer.Typer(
    name="sluice",
    no_args_is_help=True,
    add_completion=False,
    # locals can hold the Redis URL, password included
    pretty_exceptions_show_locals=False,
)

WAIT_POLL_S = 0.2  # how often `enqueue --wait` polls a status with events off
WATCH_FALLBACK_S = 1.0  # with events, `enqueue --wait` redraws at each; at least this often


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"sluice {sluice_version()}")
        raise typer.Exit()


def _defer_option(value: float) -> float:
    try:
        return check_defer(value)
    except InvalidJob as exc:
        raise typer.BadParameter(str(exc)) from None


@app.callback()
def root(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Enqueue Sluice jobs and follow them: status, live progress, results, queue stats."""


@app.command()
def enqueue(
    pipeline: Annotated[str, typer.Argument(help="A pipeline workers run, e.g. text-stats.")],
    inputs: Annotated[
        list[str] | None, typer.Argument(help="Input URIs (https://, file://, data:).")
    ] = None,
    from_file: Annotated[
        str | None,
        typer.Option(
            "--from-file",
            "-f",
            metavar="PATH|-",
            help="Also read inputs from a file, one per line ('-': stdin); blank lines and "
            "lines starting with # are skipped. Streamed: any size is fine.",
        ),
    ] = None,
    job_id: Annotated[
        str | None, typer.Option("--job-id", help="Use this id (default: a random one).")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            metavar="KEY=VALUE",
            help="A pipeline option; VALUE is parsed as JSON if it is valid JSON, else a string.",
        ),
    ] = None,
    defer: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            callback=_defer_option,
            help="Do not run before this many seconds (at most a year).",
        ),
    ] = 0.0,
    queue: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="The queue it waits in (default: 'default'); only workers that serve it "
            "(SLUICE_QUEUES) take it.",
        ),
    ] = None,
    priority: Annotated[
        int,
        typer.Option(
            min=0,
            max=MAX_PRIORITY,
            help="0-9: ahead of lower-priority jobs that became due up to this many minutes "
            "before it (never starves them: see docs/queues.md).",
        ),
    ] = 0,
    timeout: Annotated[
        float | None,
        typer.Option(metavar="SECONDS", help="This job's timeout (default: the worker's)."),
    ] = None,
    max_tries: Annotated[
        int | None,
        typer.Option(metavar="N", help="This job's tries per unit (default: the worker's)."),
    ] = None,
    result_ttl: Annotated[
        int | None,
        typer.Option(
            metavar="SECONDS", help="Keep this job's results this long (default: the worker's)."
        ),
    ] = None,
    callback_url: Annotated[
        str | None,
        typer.Option(
            "--callback-url",
            metavar="URL",
            help="POST the job's ending here, signed (default: the namespace's, if a worker "
            "has SLUICE_WEBHOOK_URL; see docs/webhooks.md).",
        ),
    ] = None,
    each: Annotated[
        bool,
        typer.Option(
            "--each",
            help="One job per input instead of one job of all inputs, queued a thousand per "
            "round trip; prints one job id per line.",
        ),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Wait for the job to end, then print its status; exit 0 if it completed with "
            "every input done, 3 if it completed with failed inputs, 1 if it did not complete. "
            "With --each: wait for every job, print how many ended in each state.",
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help='Print {"job_id": ...}; with --wait, the final status as JSON.'
        ),
    ] = False,
) -> None:
    """Enqueue a job and print its id."""
    try:
        options = parse_options(option or [])
    except OptionError as exc:
        raise typer.BadParameter(str(exc), param_hint="--option") from None
    if each and job_id is not None:
        raise typer.BadParameter("names one job; --each makes one per input", param_hint="--job-id")
    args, stdout, stderr = list(inputs or []), Console(), Console(stderr=True)
    chosen = {
        "queue": queue,
        "priority": priority,
        "timeout_s": timeout,
        "max_tries": max_tries,
        "result_ttl_s": result_ttl,
        "callback_url": callback_url,
    }
    job: dict[str, Any] = {"options": options, "job_id": job_id, "defer_s": defer, **chosen}

    with contextlib.ExitStack() as stack:
        source = open_inputs(from_file, stack) if from_file is not None else None

        async def work(client: Client) -> int:
            if each:
                many = {"options": options, "defer_s": defer, **chosen}
                return await enqueue_jobs_each(client, pipeline, args, source, many, wait, as_json)
            if source is None:
                new_id = await client.enqueue(pipeline, args, **job)
            else:
                new_id = await enqueue_streamed(client, pipeline, args, source, stderr, **job)
            if as_json and not wait:
                print_json({"job_id": new_id})
            if not as_json:
                typer.echo(new_id)
            if not wait:
                return 0
            if as_json:
                final = await client.wait(new_id)
            else:
                every = WATCH_FALLBACK_S if client.settings.events_maxlen else WAIT_POLL_S
                final = await watch(client, new_id, every, stderr)
            return show_status(final, as_json=as_json, console=stdout)

        run(work)


async def enqueue_jobs_each(
    client: Client,
    pipeline: str,
    args: list[str],
    source: Iterator[str] | None,
    job: dict[str, Any],
    wait: bool,
    as_json: bool,
) -> int:
    """`enqueue --each`: ids printed as they are queued (all at the end with --json)."""

    def show(ids: list[str]) -> None:
        if not as_json:
            for job_id in ids:
                typer.echo(job_id)

    ids = await enqueue_each(client, pipeline, args, source, show, **job)
    if not wait:
        if as_json:
            print_json({"job_ids": ids})
        return 0
    endings = [await client.wait(job_id, poll_s=WAIT_POLL_S) for job_id in ids]
    states = Counter(status.state.value for status in endings)
    if as_json:
        print_json({"job_ids": ids, "states": dict(states)})
    else:
        summary = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
        Console(stderr=True).print(f"{len(ids)} jobs ended: {summary}")
    return ending_code(endings)


@app.command()
def status(job_id: JobIdArg, as_json: JsonFlag = False) -> None:
    """Show a job's state, counts, timestamps and stage timings.

    Exits 1 if there is no such job (state not_found), which is still printed.
    """

    async def work(client: Client) -> int:
        current = await client.status(job_id)
        show_status(current, as_json=as_json, console=Console())
        return 1 if current.state == JobState.NOT_FOUND else 0

    run(work)


@app.command("watch")
def watch_command(
    job_id: JobIdArg,
    interval: Annotated[
        float,
        typer.Option(
            min=0.05,
            metavar="SECONDS",
            help="Read the status at least this often (it is read at each of the job's "
            "events too).",
        ),
    ] = 1.0,
) -> None:
    """Show live progress per stage until the job ends, then its status; it moves at each of
    the job's events (`sluice events`).

    Exits 0 if the job completed with every input done, 3 if it completed with failed inputs,
    1 if it failed, was cancelled or does not exist.
    """

    async def work(client: Client) -> int:
        console = Console()
        final = await watch(client, job_id, interval, console)
        return show_status(final, as_json=False, console=console)

    run(work)


@app.command()
def results(
    job_id: JobIdArg,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per input, in input order.")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            metavar="DIR",
            help="Write each stored blob (e.g. a thumbnail) to DIR as {index:06d}.{ext} "
            "instead of printing records.",
        ),
    ] = None,
    failed_only: Annotated[bool, typer.Option(help="Only the inputs that failed.")] = False,
) -> None:
    """Show a job's stored records: each input's result, or the error that stopped it."""

    async def work(client: Client) -> int:
        await show_results(client, job_id, as_json=as_json, output=output, failed_only=failed_only)
        return 0

    run(work)


@app.command()
def stats(as_json: JsonFlag = False) -> None:
    """Show queue depth (ready, deferred), jobs in progress, the failed set and live workers."""

    async def work(client: Client) -> int:
        current = await client.stats()
        if as_json:
            print_json(current.as_dict())
        else:
            Console().print(render_stats(current))
        return 0

    run(work)


for command in (
    control.cancel,
    control.retry,
    control.failed,
    control.workers,
    listing.jobs,
    listing.delete,
    listing.purge,
    listing.pipelines,
    events,
):
    app.command()(command)
app.add_typer(schedules.app, name="schedules")


@app.command()
def dashboard(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on [default: SLUICE_DASHBOARD_HOST].")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, help="Port (0: a free one) [default: SLUICE_DASHBOARD_PORT]."
        ),
    ] = None,
) -> None:
    """Serve the web dashboard and the HTTP API until Ctrl-C (needs the dashboard extra)."""
    try:
        settings = load_settings(DashboardSettings)
        server_label(settings)  # no server: say so now, not at the first page
    except ConfigError as exc:
        fail(str(exc), 2)
    except SluiceError as exc:
        fail(str(exc), 1)
    try:  # imported here: the rest of the CLI loads no web framework
        from producer.dashboard.app import serve
    except ImportError as exc:
        fail(f"the dashboard needs its extra: pip install 'sluice[dashboard]' ({exc})", 2)
    host = host or settings.dashboard_host
    port = settings.dashboard_port if port is None else port
    try:
        serve(settings, host, port)
    except OSError as exc:
        fail(f"cannot serve on {host}:{port}: {exc}", 1)


def main() -> None:
    """The `sluice` console script."""
    app(prog_name="sluice")
