"""Systems 2 and 3 (plain arq, transform inline / in a process pool), and arq's no-op ceiling."""

from __future__ import annotations

from arq.connections import ArqRedis, RedisSettings, create_pool

from benchmarks.systems.base import WARMUP_URI, Managed, System, bounded, python_module, wait_until

ENQUEUERS = 16  # enqueue_job calls in flight from the harness


class ArqSystem(System):
    """One arq worker process running ``max_jobs`` = fetch concurrency jobs at once."""

    mode = "inline"
    function = "process"
    process: Managed | None = None
    arq: ArqRedis | None = None
    enqueued = 0

    @property
    def queue(self) -> str:
        return f"{self.ctx.namespace}:queue"

    def given(self) -> str:
        pool = f", a ProcessPoolExecutor of {self.ctx.cores}" if self.mode == "pool" else ""
        return (
            f"1 process, max_jobs={self.ctx.fetch_concurrency}{pool}, "
            f"poll_delay={self.ctx.poll_delay_s:g} s"
        )

    async def start(self) -> None:
        args = python_module(
            "benchmarks.systems.arq_app",
            "--mode",
            self.mode,
            "--redis-url",
            self.ctx.redis_url,
            "--queue",
            self.queue,
            "--max-jobs",
            str(self.ctx.fetch_concurrency),
            "--fetch-concurrency",
            str(self.ctx.fetch_concurrency),
            "--pool-size",
            str(self.ctx.cores),
            "--poll-delay",
            str(self.ctx.poll_delay_s),
        )
        self.process = Managed(args, self.ctx.log_dir / f"{self.ctx.namespace}.log")
        self.processes.append(self.process)
        self.arq = await create_pool(RedisSettings.from_dsn(self.ctx.redis_url))
        warmup = f"{self.ctx.namespace}:warmup"
        await self.arq.enqueue_job(
            "process", warmup, "trivial", 0, WARMUP_URI, _queue_name=self.queue
        )

        async def warm() -> bool:
            return bool(await self.ctx.redis.hlen(warmup))

        await wait_until(warm, f"{self.name} warm-up job", alive=self.process.check)

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process else []

    async def submit(self) -> None:
        assert self.arq is not None
        arq, queue, key, transform = self.arq, self.queue, self.results_key, self.workload.transform

        async def enqueue(item: tuple[int, str]) -> None:
            await arq.enqueue_job(
                self.function, key, transform, item[0], item[1], _queue_name=queue
            )
            self.enqueued += 1

        await bounded(enqueue, enumerate(self.uris), ENQUEUERS)

    async def stop(self, graceful: bool) -> None:
        if self.process is not None:
            await self.process.stop(graceful)
        if self.arq is not None:
            await self.arq.aclose()


class ArqInline(ArqSystem):
    name = "arq-inline"
    mode = "inline"


class ArqPool(ArqSystem):
    name = "arq-pool"
    mode = "pool"


class ArqNoop(ArqSystem):
    """arq jobs that do nothing: arq's own ceiling in jobs per second (tiny workload only)."""

    name = "arq-noop"
    mode = "inline"
    function = "noop"

    def given(self) -> str:
        return f"no-op jobs; {super().given()}"

    async def done(self) -> int:
        # a job leaves arq's queue when it finishes
        self.poll_commands += 1
        return self.enqueued - int(await self.ctx.redis.zcard(self.queue))

    async def failures(self) -> int:
        return 0
