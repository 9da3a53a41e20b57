"""The transform stage survives what one input's job brings it: options that cannot cross to
the pool or be compared, a pool call that fails outright; those inputs fail with the reason
and the stage goes on (a real pool, the stage run in this process)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from worker.pool import TransformPool
from worker.registry import REGISTRY, load_modules
from worker.settings import WorkerConfig
from worker.stages.budget import ByteBudget
from worker.stages.items import Item, JobRun
from worker.stages.transform import TransformStage

WAIT_S = 30.0


class Incomparable:
    """An option value whose == raises."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("cannot compare")

    __hash__ = object.__hash__


class Stage:
    """A running transform stage with its queues."""

    def __init__(self, pool: TransformPool) -> None:
        config = WorkerConfig(
            _env_file=None, pool_size=1, transform_attempts=1, transform_batch_items=8
        )
        self.inbox: asyncio.Queue[Item] = asyncio.Queue()
        self.out: asyncio.Queue[Item] = asyncio.Queue()
        self.stage = TransformStage(pool, config, self.inbox, self.out, ByteBudget(1 << 20))
        self.task = asyncio.create_task(self.stage.run())

    async def through(self, *items: Item) -> list[Item]:
        """Put ``items`` in; the items that come out, once all have, in input order."""
        for item in items:
            self.inbox.put_nowait(item)
        async with asyncio.timeout(WAIT_S):
            done = [await self.out.get() for _ in items]
        assert not self.task.done(), "the stage stopped"
        return sorted(done, key=lambda item: item.index)


@pytest.fixture
async def pool() -> AsyncIterator[TransformPool]:
    load_modules([])
    made = TransformPool(1, [], task_timeout_s=30)
    made.start()
    yield made
    made.stop()


@pytest.fixture
async def stage(pool: TransformPool) -> AsyncIterator[Stage]:
    running = Stage(pool)
    yield running
    running.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running.task


def items(options: dict[str, Any], *texts: bytes, first: int = 0) -> list[Item]:
    run = JobRun("job", REGISTRY.pipelines["text-stats"], options)
    return [Item(run, first + i, f"data:,{t.decode()}", data=t) for i, t in enumerate(texts)]


async def test_options_that_cannot_cross_to_the_pool_fail_their_inputs(stage: Stage) -> None:
    """Inputs whose job's options cannot be pickled fail naming why; others are transformed."""
    bad = items({"lock": threading.Lock()}, b"a", b"b")
    good = items({}, b"c d", first=2)
    done = await stage.through(*bad, *good)
    assert [item.ok for item in done] == [False, False, True]
    assert done[0].error == (
        "transform call failed: TypeError: cannot pickle '_thread.lock' object"
    )
    assert done[2].result_json is not None and b'"words":2' in done[2].result_json


async def test_options_that_cannot_be_compared_ride_alone(stage: Stage) -> None:
    """Two jobs' options whose == raises are never batched together, and both pass."""
    await stage.through(*items({}, b"warm"))  # the stage batches once it knows the cost
    first = items({"x": Incomparable()}, b"one", b"two")
    second = items({"x": Incomparable()}, b"three", first=2)
    done = await stage.through(*first, *second)
    assert [item.ok for item in done] == [True, True, True]


async def test_a_pool_call_that_fails_outright_fails_its_inputs() -> None:
    """With no pool to call (stopped at shutdown), inputs fail with the reason, and the
    stage still takes the next ones."""
    stage = Stage(TransformPool(1, []))  # never started
    try:
        done = await stage.through(*items({}, b"a", b"b"))
        assert {item.error for item in done} == {
            "transform failed: AssertionError: pool not started"
        }
        again = await stage.through(*items({}, b"c", first=2))
        assert again[0].error == "transform failed: AssertionError: pool not started"
    finally:
        stage.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stage.task
