"""``python -m benchmarks``: run the workloads through the systems and report.

    python -m benchmarks --scale 0.1 --workloads mixed,cpu --systems sluice,arq-inline

Starts one Valkey server and one HTTP server for the whole run; every (workload, system)
run gets a fresh namespace on that server, which is emptied afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks import report, systems, workloads
from benchmarks.calibrate import Calibration, calibrate
from benchmarks.http_server import HttpServer
from benchmarks.measure import code_version, cores, machine_info
from benchmarks.runner import Limits, RunResult, run_one
from benchmarks.systems.base import REPO
from benchmarks.transforms import text_stats
from producer.redis.typed import Redis
from tests.support.servers import Server, valkey_binary

HERE = Path(__file__).resolve().parent
BUSY_LOAD = 0.5  # load average past which the machine is said to be busy
# in a file or a pipe, wide enough for every column (rich's width there is 80)
console = Console(width=None if sys.stdout.isatty() else 110)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument(
        "--scale", type=float, default=1.0, help="input counts × this (1.0: the issue's)"
    )
    p.add_argument(
        "--workloads",
        default="all",
        help=f"comma-separated: {', '.join([*workloads.WORKLOADS, *workloads.GROUPS])}",
    )
    p.add_argument(
        "--systems", default="all", help=f"comma-separated: {', '.join(systems.SYSTEMS)}"
    )
    p.add_argument(
        "--fetch-concurrency",
        type=int,
        default=64,
        help="fetches in flight for the async systems (per worker), and in the physical limit "
        "(workloads that set their own keep it)",
    )
    p.add_argument("--poll-delay", type=float, default=0.05, help="arq's and Sluice's poll delay")
    p.add_argument(
        "--budget-s",
        type=float,
        default=60.0,
        help="longest one run may take before it is cut short and extrapolated",
    )
    p.add_argument("--sample-s", type=float, default=0.1, help="RSS sampling interval")
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each (workload, system), interleaved; the median is reported "
        "(a run cut short by the budget is not repeated)",
    )
    p.add_argument("--celery-python", type=Path, default=Path(".venv/celery/bin/python"))
    p.add_argument("--celery-concurrency", type=int, default=0, help="prefork processes (0: cores)")
    p.add_argument(
        "--sluice-env",
        action="append",
        default=[],
        metavar="SLUICE_X=VALUE",
        help="extra setting for the Sluice worker (repeatable)",
    )
    p.add_argument(
        "--work-dir", type=Path, default=Path(".sluice/bench"), help="logs and server data"
    )
    p.add_argument("--output", type=Path, default=HERE / "results.json")
    return p.parse_args()


def check_text_stats() -> None:
    """The copy in transforms.py must still compute what Sluice's text-stats does."""
    from worker.pipelines.text_stats import text_stats as sluice_text_stats

    sample = workloads.payload("text", 0)
    if text_stats(sample, {}) != sluice_text_stats(sample, {}):
        raise SystemExit("benchmarks/transforms.py text_stats differs from Sluice's text-stats")


def sluice_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("SLUICE_"):
            raise SystemExit(f"--sluice-env wants SLUICE_NAME=VALUE, got {pair!r}")
        env[key] = value
    return env


def fresh_work_dir(path: Path) -> Path:
    """Empty the work folder of an earlier run (only one this harness made) and return it."""
    marker = path / ".bench-work-dir"
    if path.exists() and any(path.iterdir()):
        if not marker.exists():
            raise SystemExit(f"--work-dir {path} is not empty and not an earlier bench's folder")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return path.resolve()


def describe_machine(machine: dict[str, Any]) -> None:
    load = machine["load_average"][0]
    console.print(
        f"[bold]Machine:[/] {machine['cores']} cores, {machine['cpu_model']}, "
        f"{machine['ram_bytes'] / 2**30:.1f} GiB, Python {machine['python']}, "
        f"load average {load:.2f}"
    )
    if load > BUSY_LOAD:
        console.print(
            "[yellow]Other work is running on this machine: the figures will be noisy "
            "(each run reports the CPU other work took).[/]"
        )


@dataclass
class Bench:
    """What every run of this invocation shares."""

    args: argparse.Namespace
    redis: Redis
    url: str
    http: HttpServer
    infra_pids: list[int]


async def run_workload(
    bench: Bench, workload: workloads.Workload, names: list[str], run_id: int
) -> list[RunResult]:
    """Every system on this workload, ``--repeat`` rounds of them; the median run of each."""
    args = bench.args
    count = workload.count(args.scale)
    uris = workload.uris(count, bench.http.base)
    chosen = [
        name
        for name in names
        if workload.runs_on(name) and workload.name in systems.ONLY_FOR.get(name, (workload.name,))
    ]
    console.print(f"[bold]{workload.name}[/]: {count:,} inputs")
    runs: dict[str, list[RunResult]] = {name: [] for name in chosen}
    fetches = workload.fetches(args.fetch_concurrency)
    fleets = sorted({systems.SYSTEMS[name].workers for name in chosen})
    for round_ in range(max(1, args.repeat)):
        limits = _limits(workload, count, fetches, fleets) if workload.has_limit else {}
        for name in chosen:
            done = runs[name]
            if done and (done[0].partial or done[0].error):
                continue  # each repeat would take the whole budget again
            limit = limits.get(systems.SYSTEMS[name].workers)
            result = await _run(bench, workload, name, uris, limit, f"{run_id}-{round_}")
            done.append(result)
    results = [median_run(done) for done in runs.values() if done]
    report.print_workload(console, workload.name, results, args.scale)
    return results


def _limits(
    workload: workloads.Workload, count: int, fetches: int, fleets: list[int]
) -> dict[int, Calibrated]:
    """The limit for each number of worker processes (each with ``fetches`` in flight)."""
    n_cores = cores()
    cal = calibrate(workload, count, n_cores)
    limits = {
        n: Calibrated(workloads.limit_s(workload, count, cal.parallel_s, n_cores, n * fetches), cal)
        for n in fleets
    }
    said = ", ".join(f"{c.limit_s:.2f} s on {n} worker{'s' * (n > 1)}" for n, c in limits.items())
    if list(limits) == [1]:
        said = f"{limits[1].limit_s:.2f} s"
    console.print(
        f"  transform CPU {cal.alone_s:.2f} s alone, {cal.parallel_s:.2f} s with "
        f"{n_cores} cores busy (×{cal.parallel_slowdown:.2f}); limit {said}"
    )
    return limits


@dataclass(frozen=True)
class Calibrated:
    limit_s: float
    calibration: Calibration


async def _run(
    bench: Bench,
    workload: workloads.Workload,
    name: str,
    uris: list[str],
    limit: Calibrated | None,
    tag: str,
) -> RunResult:
    args, redis = bench.args, bench.redis
    slug = name.replace("×", "x")  # a namespace is ASCII
    ctx = systems.Context(
        redis=redis,
        redis_url=bench.url,
        namespace=f"bench{tag}-{workload.name}-{slug}",
        cores=cores(),
        fetch_concurrency=workload.fetches(args.fetch_concurrency),
        poll_delay_s=args.poll_delay,
        log_dir=args.work_dir,
        infra_pids=bench.infra_pids,
        celery_python=args.celery_python,
        celery_concurrency=args.celery_concurrency,
        sluice_env=sluice_env(args.sluice_env),
        pool_size=workload.pool_size,
    )
    limits = Limits(
        limit.limit_s if limit else None,
        workload.checkpoint_count(args.scale),
        args.budget_s,
        args.sample_s,
    )
    with console.status(f"  {workload.name} × {name}…"):
        result = await run_one(systems.SYSTEMS[name], ctx, workload, uris, limits)
    await redis.flushall()
    if limit is not None:
        result.extra["calibration"] = asdict(limit.calibration)
    state = result.error or f"{result.wall_s:.2f} s, {result.throughput:,.0f}/s"
    console.print(f"  {name}: {state}")
    return result


def median_run(runs: list[RunResult]) -> RunResult:
    """The run with the median wall time (the faster of the two middle ones for an even
    count), with every run's figures kept in ``extra["repeats"]``. Its efficiency is the
    median of the runs' efficiencies, each against its own round's limit: every system had
    the same rounds, so these compare, where one run's limit against another's would not."""
    ordered = sorted(runs, key=lambda r: (bool(r.error), r.wall_s))
    chosen = ordered[(len(ordered) - 1) // 2]
    chosen.extra["repeats"] = [
        {"wall_s": r.wall_s, "limit_s": r.limit_s, "efficiency": r.efficiency, "error": r.error}
        for r in runs
    ]
    efficiencies = [r.efficiency for r in runs if r.efficiency is not None and not r.error]
    if efficiencies:
        chosen.efficiency = statistics.median(efficiencies)
    return chosen


async def main_async(args: argparse.Namespace) -> None:
    chosen = workloads.resolve(args.workloads)
    names = systems.resolve(args.systems)
    check_text_stats()
    args.work_dir = fresh_work_dir(args.work_dir)
    args.celery_python = args.celery_python.absolute()
    meta = {
        "machine": machine_info(),
        "code": code_version(REPO),
        "scale": args.scale,
        "settings": {k: str(v) for k, v in vars(args).items()},
    }
    describe_machine(meta["machine"])
    texts = max((w.count(args.scale) for w in chosen if w.kind == "text"), default=0)
    server = Server(valkey_binary(), args.work_dir / "redis").start()
    http = HttpServer(args.work_dir / "http.log", texts).start()
    redis = Redis.from_url(server.url)
    infra = [p.pid for p in (server.process, http.process) if p is not None]
    bench = Bench(args, redis, server.url, http, infra)
    results: list[RunResult] = []
    try:
        for run_id, workload in enumerate(chosen):
            results += await run_workload(bench, workload, names, run_id)
    finally:
        await redis.aclose()
        http.stop()
        server.stop()
        if results:
            report.write_json(args.output, meta, results)
            chart_path = args.output.with_suffix(".png")
            report.chart(
                chart_path,
                results,
                f"Sluice benchmark, scale {args.scale:g}, {meta['machine']['cores']} cores",
            )
            console.print(f"Wrote {args.output} and {chart_path}; logs in {args.work_dir}")


def main() -> None:
    asyncio.run(main_async(parse_args()))


if __name__ == "__main__":
    main()
