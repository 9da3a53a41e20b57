"""System 5, Sluice: real ``python -m worker`` subprocesses, jobs enqueued with the Client.

Sluice gets the workload's ``sluice_jobs`` jobs sharing its inputs where that is its natural
use (one job for mixed, cpu, io, huge and scale-big; eight for scale-backlog), and one job
per input for the queue-overhead workload (tiny), queued with `Client.enqueue_many` as a
producer of many small jobs would. ``sluice×2`` and ``sluice×4`` are the same on 2 and 4
worker processes sharing the one Redis; every worker serves /metrics, from which the run
reports the units each one finished.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from benchmarks.systems.base import WARMUP_URI, Context, Managed, System, wait_until
from benchmarks.workloads import Workload
from producer import Client, ClientSettings, JobState
from tests.support.scrape import scrape
from tests.support.servers import free_port

BULK_SUBMIT = 1000  # jobs per Client.enqueue_many call (one job per input)
WARMUP_TIMEOUT_S = 60.0
UNITS_DONE = "sluice_units_finished_total{"  # a sample of it, with outcome="done"
ENDED_BADLY = {JobState.FAILED.value.encode(), JobState.CANCELLED.value.encode(), None}


class SluiceSystem(System):
    name = "sluice"
    client: Client | None = None
    enqueued = 0

    def __init__(self, ctx: Context, workload: Workload, uris: list[str]) -> None:
        super().__init__(ctx, workload, uris)
        self.ports = [free_port() for _ in range(self.workers)]  # each worker's /metrics
        self.job_ids: list[str] = []
        self.units_before: list[float] = []
        self.units: list[int] = []  # units each worker finished during the run

    def settings(self, metrics_port: int = 0) -> dict[str, str]:
        """A worker's SLUICE_* settings: defaults, except what makes the run comparable."""
        ns = self.ctx.namespace
        return {
            "SLUICE_REDIS_URL": self.ctx.redis_url,
            "SLUICE_NAMESPACE": ns,
            "SLUICE_DATA_DIR": str(self.ctx.log_dir / ns),
            "SLUICE_PIPELINES": "benchmarks.pipelines",
            "SLUICE_FETCH_ALLOW": "127.0.0.0/8",
            "SLUICE_POOL_SIZE": str(self.ctx.pool_size or self.ctx.cores),
            "SLUICE_FETCH_CONCURRENCY": str(self.ctx.fetch_concurrency),
            "SLUICE_FETCH_PER_HOST": "0",  # every input comes from one host here
            "SLUICE_POLL_DELAY_S": str(self.ctx.poll_delay_s),
            "SLUICE_LOG_LEVEL": "warning",
            "SLUICE_LOG_FORMAT": "json",
            "SLUICE_METRICS_HOST": "127.0.0.1",
            "SLUICE_METRICS_PORT": str(metrics_port),
            **self.ctx.sluice_env,
        }

    def client_settings(self, **extra: Any) -> ClientSettings:
        """The harness's own client: it enqueues, and reads what the run did."""
        return ClientSettings(
            redis_url=self.ctx.redis_url,
            namespace=self.ctx.namespace,
            max_queued_jobs=0,
            _env_file=None,
            **extra,
        )

    def given(self) -> str:
        s = self.settings()
        extra = "".join(f", {k}={v}" for k, v in self.ctx.sluice_env.items())
        n = self.workload.sluice_jobs
        jobs = {0: "1 job per input", 1: "1 job"}.get(n, f"{n} jobs")
        workers = "1 worker," if self.workers == 1 else f"{self.workers} workers, each with a"
        return (
            f"{workers} pool of {s['SLUICE_POOL_SIZE']}, "
            f"{s['SLUICE_FETCH_CONCURRENCY']} fetches in flight, {jobs}{extra}"
        )

    async def start(self) -> None:
        log_dir, ns = self.ctx.log_dir, self.ctx.namespace
        (log_dir / ns).mkdir(parents=True, exist_ok=True)
        for n, port in enumerate(self.ports):
            # run from the log folder, so a developer's .env in the repo does not apply
            command, log = [sys.executable, "-m", "worker"], log_dir / f"{ns}-{n}.log"
            self.processes.append(Managed(command, log, self.settings(port), log_dir))
        self.client = Client(self.client_settings())
        await wait_until(
            self._registered, f"{self.workers} Sluice worker(s) ready", alive=self.check
        )
        await self._warm_up(self.client)
        self.units_before = await self._units_done()

    async def _registered(self) -> bool:
        assert self.client is not None
        beats = await self.client.redis.zrange(self.client.keys.workers, 0, -1)
        pids = {raw.decode().rpartition(":")[2] for raw in beats}
        return all(str(worker.pid) in pids for worker in self.processes)

    async def _warm_up(self, client: Client) -> None:
        """Warm-up jobs, one at a time, until every worker has run one. An enqueue wakes the
        idle worker that has waited longest (BLPOP serves the longest waiting first), so a
        few rounds reach every worker."""
        cold = {str(worker.pid) for worker in self.processes}
        deadline = time.monotonic() + WARMUP_TIMEOUT_S
        while cold:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Sluice workers {sorted(cold)} had no warm-up job in time")
            job_id = await client.enqueue("bench-trivial", [WARMUP_URI])
            status = await client.wait(job_id, timeout_s=WARMUP_TIMEOUT_S, poll_s=0.02)
            if status.state != JobState.COMPLETE:
                raise RuntimeError(f"Sluice warm-up job ended {status.state}: {status.error}")
            cold.discard((status.worker or "").rpartition(":")[2])

    async def _units_done(self) -> list[float]:
        """Units each worker has finished so far, by its /metrics."""
        scraped = await asyncio.gather(*(scrape(port) for port in self.ports))
        return [
            sum(v for k, v in samples.items() if k.startswith(UNITS_DONE) and 'outcome="done"' in k)
            for samples in scraped
        ]

    def pids(self) -> list[int]:
        return [worker.pid for worker in self.processes]

    async def submit(self) -> None:
        assert self.client is not None
        client, pipeline = self.client, self.workload.sluice_pipeline
        jobs = self.workload.sluice_jobs
        if jobs == 1:
            self.job_ids.append(await client.enqueue(pipeline, self.uris))
            return
        if jobs > 1:  # all queued at once, in one call
            size = -(-len(self.uris) // jobs)
            parts = [self.uris[first : first + size] for first in range(0, len(self.uris), size)]
            self.job_ids += await client.enqueue_many(pipeline, parts)
            return

        # one job per input, queued in bulk: what a producer of many small jobs would use
        for first in range(0, len(self.uris), BULK_SUBMIT):
            batch = [[uri] for uri in self.uris[first : first + BULK_SUBMIT]]
            ids = await client.enqueue_many(pipeline, batch)
            self.job_ids += ids
            self.enqueued += len(ids)

    async def done(self) -> int:
        assert self.client is not None
        redis, keys = self.client.redis, self.client.keys
        if self.workload.sluice_jobs:
            async with redis.pipeline(transaction=False) as pipe:
                for job_id in self.job_ids:
                    pipe.hget(keys.job(job_id), "stored")
                stored = await pipe.execute()
            self.poll_commands += len(stored)
            return sum(int(n or 0) for n in stored)
        # A one-input job is one unit: it leaves the queue when a worker claims it and the
        # lease set when it ends. Read in this order, a claim between the two reads makes the
        # count low for one poll, never high.
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.queue)
            pipe.zcard(keys.leases)
            waiting, held = await pipe.execute()
        self.poll_commands += 2
        return self.enqueued - int(waiting) - int(held)

    async def failures(self) -> int:
        """Inputs that failed, plus jobs that ended failed or cancelled, or are gone (a job
        still running is not counted: the last records of a job come before its ending, and
        a run cut short by the budget leaves its jobs running)."""
        assert self.client is not None
        redis, keys = self.client.redis, self.client.keys
        failed = 0
        for first in range(0, len(self.job_ids), 1000):
            async with redis.pipeline(transaction=False) as pipe:
                for job_id in self.job_ids[first : first + 1000]:
                    pipe.hmget(keys.job(job_id), "state", "failed")
                rows = await pipe.execute()
            for state, count in rows:
                failed += int(count or 0) + (state in ENDED_BADLY)
        return failed

    async def collect(self) -> None:
        """Sum the jobs' stage timings (what Sluice itself says about where time went), and
        read the units each worker finished during the run."""
        assert self.client is not None
        after = await self._units_done()
        self.units = [round(a - b) for a, b in zip(after, self.units_before, strict=True)]
        totals: dict[str, float] = {}
        times = ["enqueued_at", "started_at", "finished_at"]
        fields = [
            f"{stage}_{what}"
            for stage in ("fetch", "transform", "store")
            for what in ("count", "s")
        ] + times
        redis, keys = self.client.redis, self.client.keys
        for first in range(0, len(self.job_ids), 1000):
            async with redis.pipeline(transaction=False) as pipe:
                for job_id in self.job_ids[first : first + 1000]:
                    pipe.hmget(keys.job(job_id), fields)
                rows = await pipe.execute()
            for row in rows:
                values = dict(zip(fields, (float(v or 0) for v in row), strict=True))
                values["queued_s"] = values["started_at"] - values["enqueued_at"]
                values["running_s"] = values["finished_at"] - values["started_at"]
                for name in times:
                    del values[name]
                for name, value in values.items():
                    totals[name] = totals.get(name, 0.0) + value
        if self.job_ids:  # the mean job: how long it waited in the queue, and ran
            for name in ("queued_s", "running_s"):
                totals[f"mean_job_{name}"] = totals.pop(name) / len(self.job_ids)
        if len(self.job_ids) == 1:
            status = await self.client.status(self.job_ids[0])
            totals["sluice_elapsed_s"] = status.elapsed_s or 0.0
        self._stages = totals

    def extra(self) -> dict[str, object]:
        return {"stages": getattr(self, "_stages", {}), "units_per_worker": self.units}

    async def stop(self, graceful: bool) -> None:
        await asyncio.gather(*(worker.stop(graceful) for worker in self.processes))
        if self.client is not None:
            await self.client.close()


class SluiceX2(SluiceSystem):
    name = "sluice×2"
    workers = 2


class SluiceX4(SluiceSystem):
    name = "sluice×4"
    workers = 4
