"""System 5, Sluice: a real ``python -m worker`` subprocess, jobs enqueued with the Client.

Sluice gets one job of every input where that is its natural use (mixed, cpu, io, huge),
and one job per input for the queue-overhead workload (tiny), queued with
`Client.enqueue_many` as a producer of many small jobs would.
"""

from __future__ import annotations

import os
import sys

from producer import Client, ClientSettings, JobState
from tests.bench.systems.base import WARMUP_URI, Managed, System, wait_until

BULK_SUBMIT = 1000  # jobs per Client.enqueue_many call (one job per input)


class SluiceSystem(System):
    name = "sluice"
    worker: Managed | None = None
    client: Client | None = None
    job_ids: list[str]
    enqueued = 0

    def settings(self) -> dict[str, str]:
        """The worker's SLUICE_* settings: defaults, except what makes the run comparable."""
        ns = self.ctx.namespace
        return {
            "SLUICE_REDIS_URL": self.ctx.redis_url,
            "SLUICE_NAMESPACE": ns,
            "SLUICE_DATA_DIR": str(self.ctx.log_dir / ns),
            "SLUICE_PIPELINES": "tests.bench.pipelines",
            "SLUICE_FETCH_ALLOW": "127.0.0.0/8",
            "SLUICE_POOL_SIZE": str(self.ctx.cores),
            "SLUICE_FETCH_CONCURRENCY": str(self.ctx.fetch_concurrency),
            "SLUICE_FETCH_PER_HOST": "0",  # every input comes from one host here
            "SLUICE_POLL_DELAY_S": str(self.ctx.poll_delay_s),
            "SLUICE_LOG_LEVEL": "warning",
            "SLUICE_LOG_FORMAT": "json",
            **self.ctx.sluice_env,
        }

    def given(self) -> str:
        s = self.settings()
        extra = "".join(f", {k}={v}" for k, v in self.ctx.sluice_env.items())
        jobs = "1 job" if self.workload.sluice_one_job else "1 job per input"
        return (
            f"1 worker, pool of {s['SLUICE_POOL_SIZE']}, "
            f"{s['SLUICE_FETCH_CONCURRENCY']} fetches in flight, {jobs}{extra}"
        )

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update(self.settings())
        log_dir, ns = self.ctx.log_dir, self.ctx.namespace
        (log_dir / ns).mkdir(parents=True, exist_ok=True)
        # run from the log folder, so a developer's .env in the repo does not apply
        self.worker = Managed([sys.executable, "-m", "worker"], log_dir / f"{ns}.log", env, log_dir)
        self.processes.append(self.worker)
        settings = ClientSettings(
            redis_url=self.ctx.redis_url, namespace=ns, max_queued_jobs=0, _env_file=None
        )
        self.client = client = Client(settings)
        worker, pid = self.worker, self.worker.pid

        async def registered() -> bool:
            beats = await client.redis.zrange(client.keys.workers, 0, -1)
            return any(raw.decode().endswith(f":{pid}") for raw in beats)

        await wait_until(registered, "Sluice worker ready", alive=worker.check)
        warmup = await client.enqueue("bench-trivial", [WARMUP_URI])
        status = await client.wait(warmup, timeout_s=60, poll_s=0.02)
        if status.state != JobState.COMPLETE:
            raise RuntimeError(f"Sluice warm-up job ended {status.state}: {status.error}")
        self.job_ids = []

    def pids(self) -> list[int]:
        return [self.worker.pid] if self.worker else []

    async def submit(self) -> None:
        assert self.client is not None
        client, pipeline = self.client, self.workload.sluice_pipeline
        if self.workload.sluice_one_job:
            self.job_ids.append(await client.enqueue(pipeline, self.uris))
            return

        # one job per input, queued in bulk: what a producer of many small jobs would use
        for first in range(0, len(self.uris), BULK_SUBMIT):
            jobs = [[uri] for uri in self.uris[first : first + BULK_SUBMIT]]
            ids = await client.enqueue_many(pipeline, jobs)
            self.job_ids += ids
            self.enqueued += len(ids)

    async def done(self) -> int:
        assert self.client is not None
        redis, keys = self.client.redis, self.client.keys
        if self.workload.sluice_one_job:
            if not self.job_ids:
                return 0
            return int(await redis.hget(keys.job(self.job_ids[0]), "stored") or 0)
        return self.enqueued - int(await redis.zcard(keys.queue))  # a job leaves it when done

    async def failures(self) -> int:
        """Inputs that failed, plus jobs that did not complete."""
        assert self.client is not None
        redis, keys = self.client.redis, self.client.keys
        failed = 0
        for first in range(0, len(self.job_ids), 1000):
            async with redis.pipeline(transaction=False) as pipe:
                for job_id in self.job_ids[first : first + 1000]:
                    pipe.hmget(keys.job(job_id), "state", "failed")
                rows = await pipe.execute()
            for state, count in rows:
                failed += int(count or 0) + (state != JobState.COMPLETE.value.encode())
        return failed

    async def collect(self) -> None:
        """Sum the jobs' stage timings (what Sluice itself says about where time went)."""
        assert self.client is not None
        totals: dict[str, float] = {}
        times = ["enqueued_at", "started_at", "finished_at"]
        fields = [f"{stage}_{what}" for stage in ("fetch", "transform", "store")
                  for what in ("count", "s")] + times  # fmt: skip
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
        return {"stages": getattr(self, "_stages", {})}

    async def stop(self, graceful: bool) -> None:
        if self.worker is not None:
            await self.worker.stop(graceful)
        if self.client is not None:
            await self.client.close()
