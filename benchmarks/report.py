"""The benchmark's output: a table per workload on the terminal, results.json, and a chart."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table

from benchmarks.measure import MB
from benchmarks.runner import RunResult
from benchmarks.systems import BASELINES, SYSTEMS
from benchmarks.workloads import WORKLOADS

NOISY_SHARE = 0.10  # other work's share of the machine past which a run is flagged
SHORT = {"sequential": "seq", "arq-inline": "inline", "arq-pool": "pool", "celery": "celery"}
COLOURS = {
    "sequential": "#9e9e9e",
    "arq-inline": "#ffb74d",
    "arq-pool": "#f57c00",
    "arq-noop": "#ffe0b2",
    "celery": "#7986cb",
    "sluice": "#2e7d32",
    "sluice×2": "#43a047",
    "sluice×4": "#81c784",
    "sluice-cluster": "#00838f",
    "sluice-cluster×2": "#4dd0e1",
}


def speedup(results: Sequence[RunResult], run: RunResult, baseline: str) -> str:
    base = next((r for r in results if r.system == baseline and not r.error), None)
    if base is None or run.error or run.system == baseline or not run.wall_s:
        return ""
    ratio = base.wall_s / run.wall_s
    style = "bold green" if is_sluice(run) and ratio >= 1 else ""
    text = f"{ratio:.1f}×" if ratio < 100 else f"{ratio:.0f}×"
    return f"[{style}]{text}[/]" if style else text


def against_noop(results: Sequence[RunResult], run: RunResult) -> list[str]:
    """The run's throughput, and its Redis CPU a job, against arq no-op's in the same run: unlike
    the ms figure, a ratio that does not move with how fast the machine is today."""
    noop = next((r for r in results if r.system == "arq-noop" and not r.error), None)
    if not noop or run.system == "arq-noop" or not noop.throughput:
        return []
    parts = [f"{run.throughput / noop.throughput:.2f}× arq no-op"]
    if noop.redis_cpu_ms_per_input and run.redis_cpu_ms_per_input:
        ratio = run.redis_cpu_ms_per_input / noop.redis_cpu_ms_per_input
        parts.append(f"Redis CPU a job {ratio:.2f}× arq no-op's")
    return parts


def notes(results: Sequence[RunResult], run: RunResult) -> str:
    if run.error:
        return f"[red]error: {run.error[:200]}[/]"
    per_input_ms = 1000 * run.cpu_roots_s / run.completed if run.completed else 0.0
    parts = [
        f"CPU {run.cpu_roots_s:.2f} s main ({per_input_ms:.3f} ms per input) + "
        f"{run.cpu_children_s:.2f} s children (servers {run.cpu_infra_s:.2f} s, harness "
        f"{run.cpu_harness_s:.2f} s, other work on the machine {run.cpu_others_s:.2f} s)"
    ]
    if run.others_share > NOISY_SHARE:
        parts.append(
            f"[yellow]noisy: other work took {run.others_share:.0%} of the machine "
            "during this run[/]"
        )
    repeats = [r["wall_s"] for r in run.extra.get("repeats", []) if not r["error"]]
    if len(repeats) > 1:
        parts.append(f"median of {len(repeats)} runs ({min(repeats):.2f}–{max(repeats):.2f} s)")
    if run.partial:
        parts.append(f"cut short at {run.completed:,}/{run.inputs:,} inputs, extrapolated")
    if run.failed:
        parts.append(f"[red]{run.failed} failed[/]")
    parts.extend(against_noop(results, run))
    if run.checkpoint:
        parts.append(f"peak RSS {run.peak_rss_checkpoint / MB:.0f} MB at {run.checkpoint:,}")
    units = run.extra.get("units_per_worker") or []
    if len(units) > 1:
        shares = "/".join(f"{n / sum(units):.0%}" for n in units) if sum(units) else "-"
        parts.append(f"units per worker {'/'.join(map(str, units))} ({shares})")
    stages = run.extra.get("stages") or {}
    if stages.get("sluice_elapsed_s"):
        parts.append(f"job {stages['sluice_elapsed_s']:.2f} s by its status")
    return "; ".join(parts)


def is_sluice(run: RunResult) -> bool:
    return run.system.startswith("sluice")


def median_limit(runs: Sequence[RunResult]) -> float | None:
    """The median of the runs' rounds' limits (calibrated before every round)."""
    limits = sorted(
        r["limit_s"] for run in runs for r in run.extra.get("repeats", []) if r["limit_s"]
    )
    return limits[len(limits) // 2] if limits else None


def table(workload: str, results: Sequence[RunResult], scale: float) -> Table:
    spec = WORKLOADS[workload]
    count = results[0].inputs if results else spec.count(scale)
    # systems of several workers have limits of their own: a column, not one in the title
    by_run = spec.has_limit and len({SYSTEMS[r.system].workers for r in results}) > 1
    title = f"{workload}: {count:,} inputs, {spec.description}"
    limit = median_limit(results)
    if limit is not None and not by_run:  # each run's efficiency uses its round's limit
        title += f" — physical limit {limit:.2f} s (median)"
    per = "job" if workload == "tiny" else "in"
    headers = ["system", "wall s", f"{per}/s", *(f"×{SHORT[b]}" for b in BASELINES), "RSS MB"]
    headers += [f"cmd/{per}", f"Redis ms/{per}", "limit s", "eff."]
    rows = [row(results, run, by_run) for run in results]
    # only the columns some run has a figure in (no baseline ran, or no limit applies)
    shown = [i for i in range(len(headers)) if i == 0 or any(r[i] for r in rows)]
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    t.add_column("system", no_wrap=True, min_width=10)
    for i in shown[1:]:
        t.add_column(headers[i], justify="right")
    for cells in rows:
        t.add_row(*(cells[i] for i in shown))
    return t


def row(results: Sequence[RunResult], run: RunResult, by_run: bool) -> list[str]:
    """One run's cells, a column for every header of `table`."""
    failed = bool(run.error)
    own_limit = median_limit([run]) if by_run else None
    eff = "" if run.efficiency is None else f"{run.efficiency:.2f}"
    return [
        run.system,
        "" if failed else f"{run.wall_s:.2f}" + ("*" if run.partial else ""),
        "" if failed else f"{run.throughput:,.0f}",
        *(speedup(results, run, b) for b in BASELINES),
        f"{run.peak_rss / MB:.0f}" if run.peak_rss else "",
        f"{run.redis_calls_per_input:.1f}" if run.redis_calls_per_input else "",
        f"{run.redis_cpu_ms_per_input:.3f}" if run.redis_cpu_ms_per_input else "",
        "" if own_limit is None else f"{own_limit:.2f}",
        f"[bold]{eff}[/]" if eff and is_sluice(run) else eff,
    ]


def print_workload(
    console: Console, workload: str, results: Sequence[RunResult], scale: float
) -> None:
    console.print(table(workload, results, scale))
    console.print(
        "  [dim]×X: speed-up over baseline X; RSS: peak, worker(s) and children; cmd, Redis "
        "ms: commands the Redis server ran and CPU it used (INFO), per input or job; eff.: "
        "limit / wall time (median over the runs, each against its round's limit); *: cut "
        "short by the budget, extrapolated[/]"
    )
    for run in results:
        extra = notes(results, run)
        console.print(f"  [dim]{run.system}: {run.given}[/]" + (f"; {extra}" if extra else ""))
    console.print()


def write_json(path: Path, meta: dict[str, Any], results: Sequence[RunResult]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {**meta, "results": [r.as_dict() for r in results]}
    path.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))


def _throughput(run: RunResult) -> float:
    return run.throughput


def _efficiency(run: RunResult) -> float:
    return run.efficiency or 0.0


def chart(path: Path, results: Sequence[RunResult], title: str) -> None:
    """Throughput (log scale) and efficiency, per workload, one bar per system."""
    import matplotlib  # type: ignore[import-not-found,unused-ignore]  # the bench extra

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found,unused-ignore]
    from matplotlib.ticker import FuncFormatter  # type: ignore[import-not-found,unused-ignore]

    good = [r for r in results if not r.error and r.throughput]
    workloads = list(dict.fromkeys(r.workload for r in good))
    systems = list(dict.fromkeys(r.system for r in good))
    limited = [w for w in workloads if WORKLOADS[w].has_limit]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8), constrained_layout=True)
    width = 0.8 / max(1, len(systems))
    panels: list[tuple[Any, list[str], Callable[[RunResult], float]]] = [
        (top, workloads, _throughput),
        (bottom, limited, _efficiency),
    ]
    for axis, names, value in panels:
        for i, system in enumerate(systems):
            xs, ys = [], []
            for j, w in enumerate(names):
                run = next((r for r in good if r.workload == w and r.system == system), None)
                if run is not None:
                    xs.append(j + (i - (len(systems) - 1) / 2) * width)
                    ys.append(value(run))
            axis.bar(xs, ys, width, label=system, color=COLOURS.get(system))
        axis.set_xticks(range(len(names)), names)
    top.set_yscale("log")
    top.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    top.yaxis.set_minor_formatter(
        FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else "")
    )
    top.set_ylabel("throughput (inputs/s; jobs/s for tiny), log scale")
    top.legend(ncols=min(6, len(systems)), fontsize="small")
    top.set_title(title)
    bottom.set_ylabel("efficiency = limit time / wall time")
    bottom.axhline(1.0, color="black", linewidth=0.6, linestyle="--")
    top_eff = max((r.efficiency or 0.0 for r in good), default=1.0)
    bottom.set_ylim(0, max(1.05, math.ceil(top_eff * 10) / 10))
    fig.savefig(path, dpi=110)
    plt.close(fig)
