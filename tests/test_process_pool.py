"""The worker's process pool (worker.pool.process_pool) through `loop.run_in_executor`, with real
processes: results, errors, a process that dies, one that hangs, recycling, shutdown."""

from __future__ import annotations

import asyncio
import hashlib
import os
import pickle
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.support import pool_tasks
from worker.pool.process_pool import ProcessDied, ProcessExecutor, TaskTimedOut
from worker.pool.transform_pool import TransformPool

Factory = Callable[..., ProcessExecutor]


@pytest.fixture
async def pools() -> AsyncIterator[Factory]:
    made: list[ProcessExecutor] = []

    def make(size: int = 2, **kwargs: Any) -> ProcessExecutor:
        pool = ProcessExecutor(size, pool_tasks.nothing, **kwargs)
        pool.start()
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.shutdown()


async def call(pool: ProcessExecutor, fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)


async def test_calls_run_in_other_processes_spread_over_the_pool(pools: Factory) -> None:
    """Results come back in order per call; concurrent calls use every process."""
    pool = pools(size=2)
    big = os.urandom(3 << 20)  # larger than a pipe holds: written as the pipe drains
    assert await call(pool, pool_tasks.echo, big) == big
    pids = await asyncio.gather(*(call(pool, pool_tasks.sleep_then_pid, 0.2) for _ in range(4)))
    assert len(set(pids)) == 2 and os.getpid() not in pids


async def test_an_exception_in_the_task_reaches_the_caller(pools: Factory) -> None:
    """The task's own exception is raised in the caller; one that cannot be rebuilt keeps
    its type name and message; the process goes on serving."""
    pool = pools(size=1)
    with pytest.raises(ValueError, match="bad input"):
        await call(pool, pool_tasks.raise_value_error, "bad input")
    with pytest.raises(RuntimeError, match=r"Unpicklable.*1/2"):
        await call(pool, pool_tasks.raise_unpicklable)
    assert await call(pool, pool_tasks.echo, "still here") == "still here"


async def test_a_process_that_dies_fails_only_its_task(pools: Factory) -> None:
    """The running task fails with the exit code; those queued behind it run in the new
    process; the replacement is reported."""
    replaced: list[str] = []
    pool = pools(size=1, on_replace=replaced.append)
    first = await call(pool, pool_tasks.pid)
    crashing = asyncio.ensure_future(call(pool, pool_tasks.crash, 7))
    behind = [asyncio.ensure_future(call(pool, pool_tasks.pid)) for _ in range(3)]
    with pytest.raises(ProcessDied) as died:
        await crashing
    assert died.value.exitcode == 7
    later = set(await asyncio.gather(*behind))
    assert len(later) == 1 and first not in later
    assert replaced == ["crash"]


async def test_a_task_past_its_limit_is_killed(pools: Factory) -> None:
    """Past its limit the task fails and its process is killed; the pool carries on."""
    replaced: list[str] = []
    # only the hung call has a limit: a first call that includes the process's start-up may
    # take longer than 0.5 s on a loaded machine
    pool = pools(
        size=1, timeout_of=lambda args: 0.5 if args == (30,) else None, on_replace=replaced.append
    )
    hung_pid = await call(pool, pool_tasks.pid)
    with pytest.raises(TaskTimedOut):
        await call(pool, pool_tasks.sleep_then_pid, 30)
    with pytest.raises(ProcessLookupError):
        os.kill(hung_pid, 0)
    assert await call(pool, pool_tasks.echo, 1) == 1
    assert replaced == ["timeout"]


async def test_processes_are_recycled_after_max_tasks(pools: Factory) -> None:
    """Each process serves at most max_tasks calls, then a fresh one takes over."""
    replaced: list[str] = []
    pool = pools(size=1, max_tasks=2, on_replace=replaced.append)
    pids = [await call(pool, pool_tasks.pid) for _ in range(6)]
    assert [pids.count(p) for p in dict.fromkeys(pids)] == [2, 2, 2]

    async def recycled() -> bool:
        return replaced.count("recycle") >= 2

    for _ in range(100):
        if await recycled():
            break
        await asyncio.sleep(0.05)
    assert set(replaced) == {"recycle"} and len(replaced) >= 2


async def test_shutdown_fails_what_is_left_and_refuses_more(pools: Factory) -> None:
    """After shutdown no process is left and a new call is refused."""
    pool = pools(size=2)
    pids = await asyncio.gather(*(call(pool, pool_tasks.pid) for _ in range(2)))
    pool.shutdown()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(RuntimeError, match="not running"):
        await call(pool, pool_tasks.pid)


async def test_buffers_travel_through_shared_memory(pools: Factory) -> None:
    """PickleBuffer arguments arrive intact, whether they fit in the shared memory (many
    calls in flight, so its ring wraps) or not (then they go in the pipe)."""
    pool = pools(size=2, shared_bytes=1 << 20)
    rng = random.Random(7)
    batches = [
        [rng.randbytes(rng.randint(1, 300_000)) for _ in range(rng.randint(1, 3))]
        for _ in range(40)
    ] + [[rng.randbytes(3 << 20)]]  # larger than the shared memory
    results = await asyncio.gather(
        *(call(pool, pool_tasks.digest, *map(pickle.PickleBuffer, b)) for b in batches)
    )
    assert results == [hashlib.sha256(b"".join(b)).hexdigest() for b in batches]


async def test_a_tasks_clock_starts_when_its_process_is_ready() -> None:
    """A process still starting (its initializer running) has not begun the task it was
    given: a limit shorter than the start-up does not kill a task that runs in time."""
    replaced: list[str] = []
    pool = ProcessExecutor(
        1, pool_tasks.slow_start, (1.0,), timeout_of=lambda args: 0.5, on_replace=replaced.append
    )
    pool.start()
    try:
        assert await call(pool, pool_tasks.echo, 7) == 7
        with pytest.raises(TaskTimedOut):  # the limit still holds once it runs
            await call(pool, pool_tasks.sleep_then_pid, 30)
        assert await call(pool, pool_tasks.echo, 8) == 8  # on the replacement, booting again
        assert replaced == ["timeout"]
    finally:
        pool.shutdown()


async def test_a_short_transform_limit_does_not_apply_to_the_warm_up() -> None:
    """The warm-up waits for each process to start and import the pipelines (well over
    50 ms): a worker with SLUICE_TRANSFORM_TIMEOUT_S=0.05 still starts."""
    pool = TransformPool(1, ["tests.sample_pipelines"], task_timeout_s=0.05)
    pool.start()
    try:
        await pool.warm_up()
        assert pool.running
    finally:
        pool.stop()
