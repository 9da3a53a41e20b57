"""How the CLI shows things: the status table, live stage progress, queue stats, result rows.

`sluice status`, `sluice watch` and `sluice enqueue --wait` share these, and so can any
script that wants the same view: ``console.print(render_status(await watch(...)))``.
Every value read from Redis or given by the user goes through `shown`: wrapped in `Text`, so
a ``[`` in an input or an error message is shown as written instead of being taken for rich
markup, and with every character a terminal would act on (escape sequences, carriage
returns, bidirectional overrides) written out as an escape by `printable`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from producer.client.display import format_seconds, format_time
from producer.contract.keys import DEFAULT_QUEUE
from producer.contract.models import (
    STAGES,
    ItemResult,
    JobState,
    JobStatus,
    QueueStats,
    WebhookState,
    WebhookStatus,
)
from producer.contract.wire import dumps

STATE_STYLES = {
    JobState.QUEUED: "cyan",
    JobState.DEFERRED: "cyan",
    JobState.IN_PROGRESS: "yellow",
    JobState.COMPLETE: "green",
    JobState.FAILED: "bold red",
    JobState.CANCELLED: "magenta",
    JobState.NOT_FOUND: "bold red",
}
COUNTS = ("fetched", "transformed", "stored")
# Characters a terminal acts on instead of showing: C0 and C1 controls and DEL (escape
# sequences start with ESC or CSI), line and paragraph separators, and the bidirectional
# marks and overrides that reorder what is shown ("Trojan Source").
CONTROLS = [*range(0x20), *range(0x7F, 0xA0), *range(0x200E, 0x2010), 0x2028, 0x2029]
CONTROLS += [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
ESCAPES = {c: ascii(chr(c))[1:-1] for c in CONTROLS}  # "\x1b", "\n", "\u202e"
ESCAPES_BUT_NEWLINE = {c: e for c, e in ESCAPES.items() if c != ord("\n")}


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every character a terminal would act on written as its escape: what
    every human renderer shows of a value it did not write itself (never ``--json``)."""
    return text.translate(ESCAPES_BUT_NEWLINE if keep_newlines else ESCAPES)


def shown(value: object, style: str = "") -> Text:
    """A value from Redis or the user as rich Text: never markup, never a terminal control."""
    return Text(printable(str(value)), style=style)


def state_text(state: JobState) -> Text:
    return Text(state.value, style=STATE_STYLES.get(state, ""))


def elapsed_text(status: JobStatus, now: float | None = None) -> str:
    """Run time of a finished job, or how long a running one has been going."""
    if status.elapsed_s is not None:
        return format_seconds(status.elapsed_s)
    if status.started_at is not None and not status.state.is_final:
        return f"{format_seconds((now or time.time()) - status.started_at)} (running)"
    return "-"


def render_status(status: JobStatus, now: float | None = None) -> RenderableType:
    """The job's state, counts, error and timestamps, then its per-stage timings."""
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    info.add_row("job", shown(status.job_id))
    info.add_row("state", state_text(status.state))
    if status.state == JobState.NOT_FOUND:
        # nothing else is known; an empty table of zeros would suggest otherwise
        return info
    counts = ", ".join(f"{name} {getattr(status, name):,}" for name in COUNTS)
    failed = Text(f"{status.failed:,}", style="red" if status.failed else "")
    info.add_row("pipeline", shown(status.pipeline or "-"))
    if status.queue != DEFAULT_QUEUE or status.priority:
        info.add_row("queue", Text(f"{status.queue}, priority {status.priority}"))
    if chosen := _chosen(status):
        info.add_row("set at enqueue", Text(chosen))
    if status.schedule:
        info.add_row("schedule", shown(status.schedule))
    info.add_row("inputs", Text(f"{status.total:,} total: {counts}"))
    info.add_row("failed", failed)
    if status.error:
        info.add_row("error", shown(status.error, style="red"))
    if status.attempts:
        info.add_row("attempts", Text(str(status.attempts)))
    if status.worker:
        info.add_row("worker", shown(status.worker))
    if status.webhook is not None:
        info.add_row("webhook", webhook_text(status.webhook))
    info.add_row("enqueued", format_time(status.enqueued_at))
    info.add_row("started", format_time(status.started_at))
    info.add_row("finished", format_time(status.finished_at))
    info.add_row("elapsed", elapsed_text(status, now))
    return Group(info, Text(), render_stages(status)) if status.stages else info


def webhook_text(hook: WebhookStatus) -> Text:
    """Where the job's webhook goes and how its delivery went."""
    text = shown(hook.url or "the namespace default")
    state = hook.state.value if hook.state else "when the job ends"
    styles = {WebhookState.DELIVERED: "green", WebhookState.FAILED: "red"}
    style = styles.get(hook.state, "") if hook.state else ""
    text.append(f": {state}", style=style)
    if hook.attempts:
        text.append(f", {hook.attempts} attempt{'s' if hook.attempts > 1 else ''}")
    if hook.at is not None:
        text.append(f", last {format_time(hook.at)}")
    if hook.error:
        text.append(" (")
        text.append_text(shown(hook.error, style="red"))
        text.append(")")
    return text


def _chosen(status: JobStatus) -> str:
    """The worker settings this job overrides, as set at enqueue ('' when none)."""
    parts = []
    if status.timeout_s is not None:
        parts.append(f"timeout {format_seconds(status.timeout_s)}")
    if status.max_tries is not None:
        parts.append(f"max tries {status.max_tries}")
    if status.result_ttl_s is not None:
        parts.append(f"results kept {format_seconds(status.result_ttl_s)}")
    return ", ".join(parts)


def render_stages(status: JobStatus) -> Table:
    """Count, total and mean seconds per stage, and how busy each stage's capacity was; the
    busiest is marked as the bottleneck."""
    table = Table(title="stage timings", title_justify="left", title_style="bold")
    table.add_column("stage")
    table.add_column("count", justify="right")
    table.add_column("total s", justify="right")
    table.add_column("mean s", justify="right")
    table.add_column("busy", justify="right")  # of the stage's capacity: names the bottleneck
    table.add_column("")
    bottleneck = status.bottleneck
    timed = status.timed()  # with "rate_limit": fetches waiting for their rate limit's slot
    names = [*STAGES, *(name for name in timed if name not in STAGES)]
    for name in names:
        timing = timed.get(name)
        if timing is None:
            continue
        mark = Text("◀ bottleneck", style="bold yellow") if name == bottleneck else Text()
        table.add_row(
            shown(name),
            f"{timing.count:,}",
            f"{timing.total_s:.3f}",
            f"{timing.mean_s:.6f}",  # items often take well under a millisecond
            "-" if timing.utilisation is None else f"{timing.utilisation:.0%}",
            mark,
        )
    return table


def render_progress(status: JobStatus, now: float | None = None) -> RenderableType:
    """One bar per stage count out of the job's total, under a line with state and failures."""
    head = Text.assemble(
        shown(status.job_id, "bold"),
        "  ",
        shown(status.pipeline or "", "cyan"),
        "  ",
        state_text(status.state),
        "  ",
        (f"{status.failed:,} failed", "red" if status.failed else "dim"),
        "  ",
        (elapsed_text(status, now), "dim"),
    )
    bars = Table.grid(padding=(0, 1))
    bars.add_column(justify="right", style="bold")
    bars.add_column(width=40)
    bars.add_column(justify="right")
    total = max(status.total, 1)  # a queued job may not know its total yet
    for name in COUNTS:
        done = getattr(status, name)
        bar = ProgressBar(total=total, completed=done, width=40)
        bars.add_row(name, bar, f"{done:,}/{status.total:,}")
    return Group(head, bars)


def render_stats(stats: QueueStats) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("ready", f"{stats.ready:,}")  # jobs; their units below
    table.add_row("deferred", f"{stats.deferred:,}")
    table.add_row("in progress", f"{stats.in_progress:,}")
    table.add_row("failed", f"{stats.failed:,}")
    table.add_row("workers", f"{stats.workers:,}")
    table.add_row("oldest ready", format_seconds(stats.oldest_ready_age_s))
    table.add_row("units ready", f"{stats.ready_units:,}")
    table.add_row("units held", f"{stats.held_units:,}")
    if len(stats.queues) > 1:  # more than the default queue: a row each
        table.add_row()
        for name, queue in stats.queues.items():
            waited = format_seconds(queue.oldest_ready_age_s) if queue.ready else "-"
            table.add_row(
                f"queue {name}",
                f"{queue.ready:,} ready, {queue.deferred:,} deferred, oldest {waited}",
            )
    return table


def results_table(records: Sequence[ItemResult], width: int, *, header: bool) -> Table:
    """One page of result rows; pages of the same width line up under the first's header.

    Inputs and errors wrap (a long word is folded), so neither is ever cut; a result shows as
    much as fits on its line (`sluice results --json` prints it whole).

    Results are printed a page at a time so a job of a million inputs never sits in memory,
    which is why the column widths are fixed rather than measured from the rows.
    """
    index_w, ok_w = 8, 3
    rest = max(width - index_w - ok_w - 10, 20)  # 10: the borders and padding of 4 columns
    input_w = rest * 2 // 5
    table = Table(show_header=header, box=None, padding=(0, 1), pad_edge=False)
    table.add_column("index", justify="right", width=index_w, no_wrap=True)
    table.add_column("input", width=input_w, overflow="fold")
    table.add_column("ok", width=ok_w, no_wrap=True)
    table.add_column("result / error", width=rest - input_w, overflow="fold")
    for record in records:
        if record.ok:  # the whole result is in --json; a row shows its start
            result = printable(dumps(record.result).decode())
            ok, detail = Text("✓", style="green"), Text(result, no_wrap=True, overflow="ellipsis")
        else:  # an error is never cut: it wraps
            ok, detail = Text("✗", style="red"), shown(record.error or "", style="red")
        table.add_row(str(record.index), shown(record.input), ok, detail)
    return table
