"""Runs one workload through one system and measures it: wall time, RSS, CPU, efficiency.

The clock starts when the first input is enqueued (the system is up and warmed up) and
stops when every input has a record. A run that passes the time budget is cut short and
its wall time extrapolated from the inputs it finished (marked ``partial``).
"""

from __future__ import annotations

import asyncio
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.measure import RssSampler, ServerCounts, machine_busy_s, total_counts, tree_cpu
from benchmarks.systems import Context, System
from benchmarks.workloads import Workload

POLL_S = 0.02
# the last inputs are watched closely, so the end is seen within ~2 ms, not ~20 (a mixed run
# of ~0.5 s was otherwise measured ~10 ms long on average, for every system alike)
FINE_POLL_S = 0.002
FINE_FROM = 0.9  # share of the inputs done from which polls are fine


@dataclass
class RunResult:
    workload: str
    system: str
    given: str
    inputs: int
    completed: int = 0
    failed: int = 0
    partial: bool = False
    measured_s: float = 0.0  # wall time of the run as it went (cut short if partial)
    wall_s: float = 0.0  # wall time for every input (extrapolated if partial)
    enqueue_s: float = 0.0  # time to enqueue every input (within the wall time)
    throughput: float = 0.0  # inputs (jobs, for tiny) per second
    peak_rss: int = 0
    checkpoint: int = 0  # inputs stored when peak_rss_checkpoint was taken (0: none)
    peak_rss_checkpoint: int = 0
    cpu_roots_s: float = 0.0  # CPU of the system's main process(es): its event loop
    cpu_children_s: float = 0.0  # CPU of their children: pool processes
    cpu_infra_s: float = 0.0  # CPU of the Redis and HTTP servers during the run
    cpu_harness_s: float = 0.0  # CPU of this process (enqueueing, polling) during the run
    cpu_others_s: float = 0.0  # CPU of everything else on the machine during the run
    others_share: float = 0.0  # that, as a share of the machine's cores × wall time
    redis_calls: int = 0  # commands the server ran during the run, less the harness's polls
    redis_commands: dict[str, int] = field(default_factory=dict)  # by command
    redis_cpu_s: float = 0.0  # the server's own CPU (INFO cpu: user + sys) during the run
    # the two per input finished (per job for tiny, whose jobs have one input each)
    redis_calls_per_input: float = 0.0
    redis_cpu_ms_per_input: float = 0.0
    limit_s: float | None = None
    efficiency: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Limits:
    """What the runner needs to know about the workload beyond its inputs."""

    limit_s: float | None
    checkpoint: int
    budget_s: float
    sample_s: float


async def run_one(
    system_cls: type[System], ctx: Context, workload: Workload, uris: list[str], limits: Limits
) -> RunResult:
    system = system_cls(ctx, workload, uris)
    result = RunResult(workload.name, system.name, system.given(), len(uris))
    graceful = True
    try:
        await system.start()
        graceful = await _measure(system, result, limits)
        result.failed = await system.failures()
        await system.collect()
        result.extra = system.extra()
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
        graceful = False
    finally:
        await system.stop(graceful)
    return result


async def _poll(
    system: System, result: RunResult, limits: Limits, submit: asyncio.Task[None], start: float
) -> list[tuple[float, int]]:
    """(time, inputs done) until every input is done or the budget is spent."""
    progress: list[tuple[float, int]] = []
    while True:
        done = await system.done()
        now = time.monotonic()
        progress.append((now, done))
        if submit.done() and not result.enqueue_s:
            submit.result()  # raise its error, if any
            result.enqueue_s = now - start
        if done >= result.inputs:
            return progress
        if now - start > limits.budget_s:
            result.partial = True
            return progress
        try:
            system.check()
        except RuntimeError:
            if await system.done() < result.inputs:
                raise
        await asyncio.sleep(FINE_POLL_S if done >= FINE_FROM * result.inputs else POLL_S)


async def _measure(system: System, result: RunResult, limits: Limits) -> bool:
    """Clock the run into ``result``; False if it was cut short."""
    total, pids = result.inputs, system.pids()
    sampler = RssSampler(pids, limits.sample_s).start()
    servers, infra_pids = system.servers(), system.infra_pids()
    cpu_before, infra_before = tree_cpu(pids), tree_cpu(infra_pids)
    harness_before, busy_before = time.process_time(), machine_busy_s()
    server_before = await total_counts(servers)
    polls_before = system.poll_commands
    start = time.monotonic()
    submit = asyncio.create_task(system.submit())
    try:
        progress = await _poll(system, result, limits, submit, start)
        server_after = await total_counts(servers)
    finally:
        if not submit.done():
            submit.cancel()
        cpu = tree_cpu(pids) - cpu_before
        infra = tree_cpu(infra_pids) - infra_before
        result.cpu_harness_s = time.process_time() - harness_before
        busy = machine_busy_s() - busy_before
        sampler.stop()
    end = progress[-1][0]
    result.completed = progress[-1][1]
    polls = system.poll_commands - polls_before + 2 * len(servers)  # and the INFO calls
    _server_load(result, server_before, server_after, polls)
    result.measured_s = end - start
    result.throughput = result.completed / result.measured_s if result.measured_s else 0.0
    result.wall_s = total / result.throughput if result.throughput else float("inf")
    result.cpu_roots_s, result.cpu_children_s = cpu.roots, cpu.children
    result.cpu_infra_s = infra.roots + infra.children
    ours = cpu.roots + cpu.children + result.cpu_infra_s + result.cpu_harness_s
    result.cpu_others_s = max(0.0, busy - ours)
    capacity = result.measured_s * system.ctx.cores
    result.others_share = result.cpu_others_s / capacity if capacity else 0.0
    result.peak_rss = sampler.peak()
    if limits.checkpoint:
        reached = next((t for t, done in progress if done >= limits.checkpoint), None)
        if reached is not None:
            result.checkpoint = limits.checkpoint
            result.peak_rss_checkpoint = sampler.peak(until=reached)
    if limits.limit_s is not None:
        result.limit_s = limits.limit_s
        result.efficiency = limits.limit_s / result.wall_s if result.wall_s else None
    return not result.partial


def _server_load(result: RunResult, before: ServerCounts, after: ServerCounts, polls: int) -> None:
    """The Redis servers' commands and CPU during the run, less the harness's own commands
    (``polls``: those its polls and INFO calls sent); in total and per input finished. The
    CPU keeps the harness's share: ~30 µs per poll, ~1% of a tiny run's."""
    result.redis_commands = {
        name: n - before.calls.get(name, 0)
        for name, n in sorted(after.calls.items(), key=lambda kv: -kv[1])
        if n > before.calls.get(name, 0)
    }
    result.redis_calls = sum(result.redis_commands.values()) - polls
    result.redis_cpu_s = after.cpu_s - before.cpu_s
    if result.completed:
        result.redis_calls_per_input = result.redis_calls / result.completed
        result.redis_cpu_ms_per_input = 1000 * result.redis_cpu_s / result.completed
