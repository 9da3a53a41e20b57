"""Stage 2: send fetched bytes to the process pool, small inputs batched into one call.

In-flight pool calls are bounded by the number of dispatchers (pool size × a small factor),
so the pool stays busy while its queue never grows past that. Nothing an input's transform
does stops a dispatcher: its input fails with the reason, and the dispatcher goes on.
"""

from __future__ import annotations

import asyncio

import structlog

from worker.errors import TransformError, described
from worker.observe import instrument
from worker.pool.transform_child import Outcome
from worker.pool.transform_pool import TransformPool
from worker.settings import WorkerConfig
from worker.stages.budget import ByteBudget
from worker.stages.items import Item, JobRun

log = structlog.get_logger("sluice.transform", stage="transform")


TARGET_CALL_S = 0.02  # aim for pool calls of about this long


class TransformStage:
    def __init__(
        self,
        pool: TransformPool,
        config: WorkerConfig,
        inbox: asyncio.Queue[Item],
        to_store: asyncio.Queue[Item],
        budget: ByteBudget,
    ) -> None:
        self.pool = pool
        self.inbox, self.to_store = inbox, to_store
        self.budget = budget
        self.dispatchers = config.pool_inflight
        self.batch_items = config.transform_batch_items
        self.batch_bytes = config.transform_batch_bytes
        self.max_result_bytes = config.max_result_bytes
        self.attempts = config.transform_attempts
        # mean seconds per input, by pipeline: batches of slow inputs stay small so they
        # spread over the pool's processes instead of queueing in one
        self.cost_s: dict[str, float] = {}

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for _ in range(self.dispatchers):
                group.create_task(self._loop())

    async def _loop(self) -> None:
        carry: Item | None = None
        while True:
            first = carry or await self.inbox.get()
            batch, carry = self._fill(first)
            live = [item for item in batch if not item.run.stopped()]
            if live:
                await self._guarded(live)
            for item in batch:
                await self.budget.release(item.held_bytes)
                item.held_bytes = 0
                item.run.counters.transformed += 1
                await self.to_store.put(item)

    async def _guarded(self, batch: list[Item]) -> None:
        """Transform a batch; should anything go wrong on the way (a bug: the pool answers
        every input), its inputs without a result fail, and the dispatcher goes on."""
        try:
            await self._transform(batch)
            ok = sum(item.ok for item in batch)
            seconds = (item.transform_s for item in batch)
            instrument.transformed(batch[0].run.pipeline.name, ok, len(batch) - ok, seconds)
        except Exception as exc:
            run = batch[0].run
            log.exception(
                "transform stage error",
                job_id=run.job_id,
                pipeline=run.pipeline.name,
                inputs=len(batch),
            )
            for item in batch:
                if item.ok and item.result_json is None:
                    item.fail(f"transform failed: {described(exc)}")

    def _fill(self, first: Item) -> tuple[list[Item], Item | None]:
        """Take more waiting items that share the pipeline and options, without waiting.

        Items of different jobs ride together when their pipeline and options match: many
        one-input jobs then cost one pool call, not one each.
        """
        batch, size = [first], len(first.data or b"")
        limit = self._batch_limit(first.run.pipeline.name)
        while len(batch) < limit and size < self.batch_bytes:
            try:
                item = self.inbox.get_nowait()
            except asyncio.QueueEmpty:
                break
            if not _same_work(item.run, first.run):
                return batch, item  # it starts the next batch
            batch.append(item)
            size += len(item.data or b"")
        return batch, None

    def _batch_limit(self, pipeline: str) -> int:
        """Inputs per pool call: enough to amortise the call, few enough to share the pool."""
        cost = self.cost_s.get(pipeline)
        if cost is None:
            return 1  # measure one first
        return max(1, min(self.batch_items, int(TARGET_CALL_S / max(cost, 1e-6))))

    def _learn(self, pipeline: str, items: list[Item]) -> None:
        mean = sum(item.transform_s for item in items) / len(items)
        old = self.cost_s.get(pipeline)
        self.cost_s[pipeline] = mean if old is None else 0.8 * old + 0.2 * mean

    async def _transform(self, batch: list[Item], attempt: int = 1) -> None:
        run = batch[0].run
        payloads = [item.data or b"" for item in batch]
        try:
            outcomes = await self.pool.run(run.pipeline.name, run.options, payloads)
        except TransformError as exc:
            log.warning(
                "transform failed",
                job_id=run.job_id,
                pipeline=run.pipeline.name,
                inputs=len(batch),
                attempt=attempt,
                error=str(exc),
            )
            if len(batch) > 1:
                # find the input that broke the batch: each goes again alone
                for item in batch:
                    await self._transform([item], attempt)
            elif attempt < self.attempts:
                await self._transform(batch, attempt + 1)
            else:
                tries = f" ({attempt} attempts)" if attempt > 1 else ""
                batch[0].fail(f"{exc}{tries}")
            return
        for item, outcome in zip(batch, outcomes, strict=True):
            self._apply(item, outcome)
            item.run.counters.transform_count += 1
            item.run.counters.transform_s += item.transform_s
        self._learn(run.pipeline.name, batch)

    def _apply(self, item: Item, outcome: Outcome) -> None:
        item.transform_s = outcome.elapsed_s
        item.data = None
        if not outcome.ok:
            message = str(outcome.value)
            if not outcome.job_failed:
                item.fail(message)
            elif item.fail_job(message):
                log.warning("transform failed the job", **item.log_fields(), error=message)
            return
        assert isinstance(outcome.value, bytes)
        size = len(outcome.value) + len(outcome.blob or b"")
        if size > self.max_result_bytes:
            item.fail(
                f"result is {size} bytes, over the limit of {self.max_result_bytes} "
                "(SLUICE_MAX_RESULT_BYTES)"
            )
            return
        item.result_json, item.blob, item.blob_ext = outcome.value, outcome.blob, outcome.extension


def _same_work(a: JobRun, b: JobRun) -> bool:
    if a is b:
        return True
    if a.pipeline is not b.pipeline:
        return False
    try:
        return bool(a.options == b.options)
    except Exception:  # options that cannot be compared (a custom type's __eq__): alone
        return False
