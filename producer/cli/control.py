"""CLI commands that steer jobs and look at the fleet: cancel, retry, failed, workers."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from producer.cli.arguments import JobIdArg, JsonFlag
from producer.cli.render import printable, shown, state_text
from producer.cli.runner import Console, print_json, run
from producer.client.client import Client
from producer.client.display import format_seconds, format_time
from producer.contract.models import JobStatus, WorkerInfo


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


def retry(
    job_id: JobIdArg,
    failed_inputs: Annotated[
        bool,
        typer.Option(
            "--failed-inputs",
            help="Run a complete job again for its failed inputs only, keeping the good records.",
        ),
    ] = False,
) -> None:
    """Put a failed or cancelled job back in the queue; stored inputs are not redone."""

    async def work(client: Client) -> int:
        again = await client.retry(job_id, failed_inputs=failed_inputs)
        if again is None:
            typer.echo(f"re-queued {printable(job_id)}")
        else:
            typer.echo(f"re-queued {printable(job_id)} for its {again} failed input(s)")
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
        Console().print(render_failed(jobs))
        return 0

    run(work)


def render_failed(jobs: list[JobStatus]) -> Group:
    """Each failed job as a line of facts with its error wrapped under it, indented: readable at
    any width, where a table's columns would cut ids and times or wrap one word a line."""
    parts: list[RenderableType] = [Text(f"{len(jobs)} failed job(s)", style="bold")]
    for job in jobs:
        head = Text.assemble(shown(job.job_id, "bold"), "  ", state_text(job.state))
        head.append(f"  {printable(job.pipeline or '-')}  stored {job.stored:,}/{job.total:,}")
        detail = Text(f"finished {format_time(job.finished_at)}\n")
        detail.append(printable(job.error or "-", keep_newlines=True), style="red")
        parts += [Text(), head, Padding(detail, (0, 0, 0, 2))]
    return Group(*parts)


def workers(as_json: JsonFlag = False) -> None:
    """List live workers: id, host, pid, uptime, last heartbeat, jobs running, pool size,
    the rate limits each applies."""

    async def work(client: Client) -> int:
        live = await client.workers()
        if as_json:
            for worker in live:
                print_json(worker.as_dict())
            return 0
        Console().print(render_workers(live, time.time()))
        return 0

    run(work)


def render_workers(live: list[WorkerInfo], now: float) -> Table:
    table = Table(title=f"{len(live)} live worker(s)", show_edge=False)
    table.add_column("id", no_wrap=True)
    for column in ("host", "pid", "uptime", "last beat", "jobs", "pool", "version", "rate limits"):
        table.add_column(column)
    for w in live:
        uptime = None if w.started is None else now - w.started
        beat = "-" if w.last_beat is None else f"{now - w.last_beat:.0f} s ago"
        counts = (_shown(w.pid), format_seconds(uptime), beat, _shown(w.jobs), _shown(w.pool_size))
        rates = "\n".join(w.rates) or "-"
        table.add_row(shown(w.id), shown(w.host), *counts, shown(w.version), shown(rates))
    return table


def _shown(value: int | None) -> str:
    return "-" if value is None else str(value)
