"""The stages, run in this process with a real pool: they survive what one input's job brings
them (options that cannot cross to the pool or be compared, a pool call that fails
outright): those inputs fail with the reason and the stage goes on. And what the exception
classes pipeline authors are offered do to their input and job."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.hostile_pipelines import HostileFetcher
from worker.pool.transform_pool import TransformPool
from worker.registry import REGISTRY, load_modules
from worker.settings import WorkerConfig
from worker.stages.budget import ByteBudget
from worker.stages.fetch import FetchStage
from worker.stages.items import Item, JobRun
from worker.stages.transform import TransformStage

HOSTILE = "tests.hostile_pipelines"

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
    load_modules([HOSTILE])
    made = TransformPool(1, [HOSTILE], task_timeout_s=30)
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


def items(
    options: dict[str, Any], *texts: bytes, first: int = 0, pipeline: str = "text-stats"
) -> list[Item]:
    run = JobRun("job", REGISTRY.pipelines[pipeline], options)
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


async def test_job_failed_from_a_transform_marks_its_job(stage: Stage) -> None:
    """JobFailed fails its input with the message as written and marks the job to fail with
    it; the job's other inputs and other jobs are transformed as usual."""
    doomed = items({}, b"fine", b"job-failed", b"also fine", pipeline="test-hostile")
    other = items({}, b"other", first=3, pipeline="test-hostile")
    done = await stage.through(*doomed, *other)
    assert [(item.ok, item.error) for item in done] == [
        (True, None),
        (False, "the licence for this job has expired"),
        (True, None),
        (True, None),
    ]
    assert doomed[0].run.fatal == "the licence for this job has expired"
    assert other[0].run.fatal is None


async def test_item_errors_from_a_transform_keep_their_message(stage: Stage) -> None:
    """ItemError, TransformError and FetchError fail the input with their own message (no
    type prefix) and leave the job alone; any other exception is shown with its type."""
    words = [b"item-error", b"transform-error", b"fetch-error", b"locked"]
    done = await stage.through(*items({}, *words, pipeline="test-hostile"))
    errors = [item.error or "" for item in done]
    assert errors[:3] == ["the page is a login form", "no faces found", "stale link"]
    assert errors[3].startswith("LockedError: ('holds a lock', <unlocked _thread.lock object")
    assert done[0].run.fatal is None


async def test_what_a_fetcher_raises_decides_its_record() -> None:
    """From a fetcher: FetchError (any ItemError) fails the input with its message, JobFailed
    also marks the job, anything else is 'fetch failed: Type: message'."""
    config = WorkerConfig(_env_file=None, fetch_concurrency=2)
    inbox: asyncio.Queue[Item] = asyncio.Queue()
    later: asyncio.Queue[Item] = asyncio.Queue()
    fetch = FetchStage(
        {"hostile": HostileFetcher()}, config, inbox, later, later, ByteBudget(1 << 20)
    )
    task = asyncio.create_task(fetch.run())
    try:
        run = JobRun("job", REGISTRY.pipelines["text-stats"], {})
        words = ["fetch-error", "item-error", "job-failed", "unprintable", "fine"]
        for index, word in enumerate(words):
            inbox.put_nowait(Item(run, index, f"hostile:{word}"))
        async with asyncio.timeout(WAIT_S):
            done = sorted([await later.get() for _ in words], key=lambda item: item.index)
        assert [item.error for item in done] == [
            "stale link",
            "the page is a login form",
            "the licence for this job has expired",
            "fetch failed: UnprintableError: <unprintable UnprintableError>",
            None,
        ]
        assert run.fatal == "the licence for this job has expired"
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
