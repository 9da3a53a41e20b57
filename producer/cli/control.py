"""CLI commands that steer jobs and look at the fleet: cancel, retry, failed, workers."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from producer.cli.render import format_seconds, format_time, printable, shown, state_text
from producer.cli.runner import print_json, run
from producer.client import Client

JobIdArg = Annotated[str, typer.Argument(help="The job's id, as printed by `sluice enqueue`.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def cancel(job_id: JobIdArg) -> None:
    """Stop a queued or running job; inputs not yet stored are dropped.

    Exits 1 if the job had already ended or does not exist.
    """

    async def work(client: Client) -> int:
        if await client.cancel(job_id):
            typer.echo(f"cancelled {printable(job_id)}")
            return 0
        state = (await client.status(job_id)).state
        typer.echo(f"error: job {printable(job_id)} already ended ({state})", err=True)
        return 1

    run(work)


def retry(job_id: JobIdArg) -> None:
    """Put a failed or cancelled job back in the queue; stored inputs are not redone."""

    async def work(client: Client) -> int:
        await client.retry(job_id)
        typer.echo(f"re-queued {printable(job_id)}")
        return 0

    run(work)


def failed(
    as_json: JsonFlag = False,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 100,
) -> None:
    """List the jobs in the failed set, most recent first, with their errors."""

    async def work(client: Client) -> int:
        jobs = await client.failed(limit=limit)
        if as_json:
            for job in jobs:
                print_json(job.as_dict())
            return 0
        table = Table(title=f"{len(jobs)} failed job(s)", show_edge=False)
        table.add_column("job", no_wrap=True)
        for column in ("state", "pipeline", "stored", "finished", "error"):
            table.add_column(column)
        for job in jobs:
            table.add_row(
                shown(job.job_id), state_text(job.state), shown(job.pipeline or "-"),
                f"{job.stored}/{job.total}", format_time(job.finished_at), shown(job.error or ""),
            )  # fmt: skip
        Console().print(table)
        return 0

    run(work)


def workers(as_json: JsonFlag = False) -> None:
    """List live workers: id, host, pid, uptime, last heartbeat, jobs running, pool size."""

    async def work(client: Client) -> int:
        live = await client.workers()
        if as_json:
            for worker in live:
                print_json(worker)
            return 0
        table = Table(title=f"{len(live)} live worker(s)", show_edge=False)
        table.add_column("id", no_wrap=True)
        for column in ("host", "pid", "uptime", "last beat", "jobs", "pool", "version"):
            table.add_column(column)
        now = time.time()
        for w in live:
            table.add_row(
                shown(w.get("id", "")), shown(w.get("host", "")), shown(w.get("pid", "")),
                format_seconds(now - float(w.get("started", now))),
                f"{now - float(w.get('last_beat', now)):.0f} s ago",
                shown(w.get("jobs", "")), shown(w.get("pool_size", "")),
                shown(w.get("version", "")),
            )  # fmt: skip
        Console().print(table)
        return 0

    run(work)
