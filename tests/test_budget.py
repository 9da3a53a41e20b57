"""The in-flight byte budget: fetching waits while fetched bytes fill it."""

from __future__ import annotations

import asyncio

from worker.stages.budget import ByteBudget


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _two_waiting(
    second_size: int,
) -> tuple[ByteBudget, asyncio.Task[int], asyncio.Task[int]]:
    """A budget of 100 with 90 held, and two acquirers waiting in line: 50, then ``second_size``."""
    budget = ByteBudget(100)
    await budget.acquire(90)
    first = asyncio.create_task(budget.acquire(50))
    second = asyncio.create_task(budget.acquire(second_size))
    await _settle()
    return budget, first, second


async def test_a_fetch_that_does_not_fit_waits_for_a_release() -> None:
    budget = ByteBudget(100)
    assert await budget.acquire(60) == 60
    waiting = asyncio.create_task(budget.acquire(50))
    await _settle()
    assert not waiting.done() and budget.used == 60
    await budget.release(60)
    assert await asyncio.wait_for(waiting, 1) == 50
    assert budget.used == 50


async def test_while_one_waits_a_smaller_one_does_not_jump_the_line() -> None:
    """Room for the small one alone is not enough: the big one, waiting first, goes first."""
    budget = ByteBudget(100)
    await budget.acquire(60)
    big = asyncio.create_task(budget.acquire(80))
    await _settle()
    small = asyncio.create_task(budget.acquire(30))  # 60 + 30 fits, but big is waiting
    await _settle()
    assert not small.done()
    await budget.release(60)
    assert await asyncio.wait_for(big, 1) == 80
    await _settle()
    assert not small.done()  # 80 + 30 does not fit
    await budget.release(80)
    assert await asyncio.wait_for(small, 1) == 30
    assert budget.used == 30


async def test_an_input_larger_than_the_budget_goes_alone() -> None:
    budget = ByteBudget(100)
    assert await budget.acquire(500) == 100  # held as the whole budget, not refused
    other = asyncio.create_task(budget.acquire(1))
    await _settle()
    assert not other.done()
    await budget.release(100)
    assert await asyncio.wait_for(other, 1) == 1


async def test_a_cancelled_waiter_gives_its_place_and_its_bytes_back() -> None:
    budget, first, second = await _two_waiting(second_size=20)
    first.cancel()
    await _settle()
    assert first.cancelled()
    await budget.release(70)  # 20 used: the second one fits now that the first is gone
    assert await asyncio.wait_for(second, 1) == 20
    assert budget.used == 40


async def test_a_release_right_after_a_cancel_skips_the_cancelled_waiter() -> None:
    """The cancelled task has not run yet when bytes come back: its place is skipped, not
    granted (a grant to a cancelled future would raise), and the next in line gets in."""
    budget, first, second = await _two_waiting(second_size=40)
    first.cancel()
    await budget.release(90)  # before `first` has seen its cancellation
    assert await asyncio.wait_for(second, 1) == 40
    await _settle()
    assert first.cancelled()
    assert budget.used == 40
