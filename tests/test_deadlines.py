"""Job timeouts from one periodic check: a job past its deadline gets TimeoutError."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from worker.lifecycle.deadlines import Deadlines


async def _job(deadlines: Deadlines, timeout_s: float, work: asyncio.Future[None]) -> str:
    """A job as `worker.lifecycle.attempt._feed` runs one: its work inside a deadline."""
    async with deadlines.limit(timeout_s):
        await work
    return "done"


@pytest.fixture
async def deadlines() -> AsyncIterator[Deadlines]:
    """Deadlines checked every 10 ms, its checking task running."""
    deadlines = Deadlines(interval_s=0.01)
    checker = asyncio.create_task(deadlines.run())
    yield deadlines
    checker.cancel()


async def test_a_job_past_its_deadline_gets_timeout_error(deadlines: Deadlines) -> None:
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    job = asyncio.create_task(_job(deadlines, 0.05, loop.create_future()))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(job, 5)
    assert time.monotonic() - start >= 0.05
    assert job.cancelling() == 0  # the cancel was taken back, as asyncio.timeout does


async def test_a_job_done_in_time_is_forgotten(deadlines: Deadlines) -> None:
    """A job that finished is never cancelled later, though its deadline then passes."""
    loop = asyncio.get_running_loop()
    work: asyncio.Future[None] = loop.create_future()
    job = asyncio.create_task(_job(deadlines, 0.05, work))
    await asyncio.sleep(0.02)
    work.set_result(None)
    assert await job == "done"
    await asyncio.sleep(0.08)
    assert not deadlines._due and not deadlines._expired


async def test_another_cancel_stays_a_cancel(deadlines: Deadlines) -> None:
    """A job cancelled for another reason (`sluice cancel`, a stop) is not called a timeout."""
    loop = asyncio.get_running_loop()
    job = asyncio.create_task(_job(deadlines, 60, loop.create_future()))
    await asyncio.sleep(0.02)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job


async def _checked_at_100_s(*timeouts_s: float) -> list[asyncio.Task[str]]:
    """Jobs inside deadlines of ``timeouts_s`` (never checked by a running task), then one
    check made as if 100 s had passed."""
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    jobs = [asyncio.create_task(_job(deadlines, t, loop.create_future())) for t in timeouts_s]
    await asyncio.sleep(0)  # all inside their deadlines
    deadlines.check(time.monotonic() + 100)
    return jobs


async def test_a_cancel_beside_the_deadline_wins() -> None:
    """Cancelled by its deadline and by `sluice cancel` at once: it stays cancelled."""
    [job] = await _checked_at_100_s(10)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job


async def test_check_cancels_only_the_late() -> None:
    """One check cancels the tasks at or past their deadline and leaves the others."""
    late, early = await _checked_at_100_s(10, 1000)
    with pytest.raises(TimeoutError):
        await late
    assert not early.done()
    early.cancel()
    with pytest.raises(asyncio.CancelledError):
        await early
