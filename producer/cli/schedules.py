"""`sluice schedules`: the periodic jobs workers publish, and `sluice schedules run NAME` to
fire one now."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from producer.cli.arguments import JsonFlag
from producer.cli.render import printable, shown, state_text
from producer.cli.runner import Console, print_json, run
from producer.client.client import Client
from producer.client.display import format_time
from producer.contract.schedule_info import ScheduleInfo

app = typer.Typer(
    help="List the schedules workers publish (SLUICE_SCHEDULES), or fire one now.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@app.callback()
def schedules(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List schedules: name, timing, next run, last run, last job and its state."""
    if ctx.invoked_subcommand is not None:
        return

    async def work(client: Client) -> int:
        found = await client.schedules()
        if as_json:
            for info in found:
                print_json(info.as_dict())
            return 0
        Console().print(render_schedules(found))
        return 0

    run(work)


@app.command("run")
def run_now(
    name: Annotated[str, typer.Argument(help="The schedule's name, as `sluice schedules` shows.")],
) -> None:
    """Enqueue a schedule's job now, outside its ticks (which go on as before); print its id."""

    async def work(client: Client) -> int:
        typer.echo(await client.run_schedule(name))
        return 0

    run(work)


def render_schedules(found: list[ScheduleInfo]) -> Table:
    table = Table(title=f"{len(found)} schedule(s)", show_edge=False)
    table.add_column("name", no_wrap=True)
    for column in ("timing", "next run", "last run"):
        table.add_column(column)
    table.add_column("last job", overflow="fold")
    table.add_column("state", no_wrap=True)
    for info in found:
        state = state_text(info.last_state) if info.last_state else Text("-")
        next_run = (
            Text("stale", style="yellow") if info.stale else (Text(format_time(info.next_run)))
        )
        table.add_row(
            shown(info.name),
            shown(info.timing),
            next_run,
            Text(format_time(info.last_run)),
            shown(printable(info.last_job or "-")),
            state,
        )
    return table
