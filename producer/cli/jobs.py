"""CLI commands over many jobs and the fleet's pipelines: jobs, delete, purge, pipelines.

What they show is what the dashboard shows, read through the same `Client` calls.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from producer.cli.arguments import JobIdArg, JsonFlag
from producer.cli.render import state_text
from producer.cli.runner import Console, print_json, run, settings_or_exit
from producer.client.client import Client
from producer.client.display import format_time
from producer.client.listing import LISTED_STATES
from producer.contract.models import JobStatus
from producer.dashboard.settings import DashboardSettings

STATE_NAMES = [state.value for state in LISTED_STATES]


def _check_state(value: str | None) -> str | None:
    if value is not None and value not in STATE_NAMES:
        raise typer.BadParameter(f"{value!r} is not a state; one of: {', '.join(STATE_NAMES)}")
    return value


def jobs(
    state: Annotated[
        str | None,
        typer.Option(
            callback=_check_state,
            metavar="STATE",
            help=f"Only this state: {', '.join(STATE_NAMES)}.",
        ),
    ] = None,
    pipeline: Annotated[str | None, typer.Option(help="Only this pipeline.")] = None,
    queue: Annotated[str | None, typer.Option(help="Only jobs of this queue.")] = None,
    search: Annotated[
        str | None, typer.Option("--search", "-q", help="Only ids containing this (any case).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON status per line, as `status --json`.")
    ] = False,
) -> None:
    """List jobs, newest first, as the dashboard's Jobs page does (found by SCAN).

    At most SLUICE_DASHBOARD_MAX_LISTED jobs are read; past that a note on stderr says so.
    """

    settings = settings_or_exit(DashboardSettings)

    async def work(client: Client) -> int:
        listed = await client.jobs(
            state=state,
            pipeline=pipeline,
            search=search,
            queue=queue,
            max_listed=settings.dashboard_max_listed,
        )
        shown = listed.jobs[:limit]
        if as_json:
            for job in shown:
                print_json(job.as_dict())
        else:
            Console().print(jobs_table(shown, len(listed.jobs)))
        if listed.truncated:
            typer.echo(
                f"note: only the first {settings.dashboard_max_listed} jobs found were "
                "read (SLUICE_DASHBOARD_MAX_LISTED)",
                err=True,
            )
        return 0

    run(work, settings)


def jobs_table(shown: list[JobStatus], matched: int) -> Table:
    """Id, state, pipeline, inputs stored of total, failed inputs, when enqueued."""
    title = f"{matched} job(s)" + (f", the newest {len(shown)}" if matched > len(shown) else "")
    table = Table(title=title, show_edge=False)
    table.add_column("job", overflow="fold")
    table.add_column("state", no_wrap=True)
    table.add_column("pipeline", overflow="fold")
    table.add_column("stored", justify="right", no_wrap=True)
    table.add_column("failed", justify="right", no_wrap=True)
    table.add_column("enqueued", overflow="fold")
    for job in shown:
        failed = Text(f"{job.failed:,}", style="red" if job.failed else "")
        table.add_row(
            Text(job.job_id),
            state_text(job.state),
            Text(job.pipeline or "-"),
            f"{job.stored:,}/{job.total:,}",
            failed,
            format_time(job.enqueued_at),
        )
    return table


def delete(job_id: JobIdArg) -> None:
    """Delete an ended job (complete, failed or cancelled) with its records and blobs.

    Exits 1 if the job is queued or running (cancel it first) or does not exist.
    """

    async def work(client: Client) -> int:
        await client.delete(job_id)
        typer.echo(f"deleted {job_id}")
        return 0

    run(work)


def purge(
    failed: Annotated[
        bool, typer.Option("--failed", help="Delete every job in the failed set.")
    ] = False,
) -> None:
    """Delete many jobs at once with their records: with --failed, every failed job."""
    if not failed:
        raise typer.BadParameter("say what to purge: --failed (every job in the failed set)")

    async def work(client: Client) -> int:
        typer.echo(f"deleted {await client.purge_failed()} failed job(s)")
        return 0

    run(work)


def pipelines(as_json: JsonFlag = False) -> None:
    """List the pipelines live workers have registered, with their options."""

    async def work(client: Client) -> int:
        registered = await client.pipelines()
        if as_json:
            print_json(registered)
        else:
            Console().print(pipelines_table(registered))
        return 0

    run(work)


def pipelines_table(registered: dict[str, Any]) -> Table:
    """Name, description, and each option with its type and default."""
    table = Table(title=f"{len(registered)} pipeline(s)", show_edge=False)
    table.add_column("pipeline", no_wrap=True)
    table.add_column("description", overflow="fold")
    table.add_column("options", overflow="fold")
    for name in sorted(registered):
        info = registered[name] if isinstance(registered[name], dict) else {}
        table.add_row(Text(name), Text(str(info.get("description", ""))), _options(info))
    return table


def _options(info: dict[str, Any]) -> Text:
    """``name: type = default`` per option of a pipeline's JSON schema, one a line."""
    schema = info.get("options")
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    lines = []
    for option, spec in properties.items() if isinstance(properties, dict) else []:
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type") or " | ".join(
            str(s.get("type", "?")) for s in spec.get("anyOf", []) if isinstance(s, dict)
        )
        default = f" = {spec['default']!r}" if "default" in spec else ""
        lines.append(f"{option}: {kind or 'any'}{default}")
    return Text("\n".join(lines) or "-")
