"""System 4, the most used peer: Celery's prefork pool on the same Redis, from its own venv."""

from __future__ import annotations

import asyncio
import signal

import orjson

from benchmarks.systems.base import Managed, System, wait_until


class CelerySystem(System):
    name = "celery"
    worker: Managed | None = None
    sender: Managed | None = None

    @property
    def concurrency(self) -> int:
        return self.ctx.celery_concurrency or self.ctx.cores

    def given(self) -> str:
        return f"1 worker, prefork pool of {self.concurrency} processes (1 task each at a time)"

    async def start(self) -> None:
        python = self.ctx.celery_python
        if python is None or not python.exists():
            raise RuntimeError(f"no Celery venv at {python}: run `make bench` to create it")
        env = {"BENCH_REDIS_URL": self.ctx.redis_url}
        queue, log_dir, ns = self.ctx.namespace, self.ctx.log_dir, self.ctx.namespace
        self.worker = Managed(
            [
                str(python),
                "-m",
                "celery",
                "-A",
                "benchmarks.celery_app",
                "worker",
                "-Q",
                queue,
                "--pool",
                "prefork",
                "--concurrency",
                str(self.concurrency),
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{ns}@%h",
            ],
            log_dir / f"{ns}.log",
            env,
        )
        self.processes.append(self.worker)
        spec = log_dir / f"{ns}.json"
        warmup = f"{ns}:warmup"
        spec.write_bytes(
            orjson.dumps(
                {
                    "queue": queue,
                    "results_key": self.results_key,
                    "warmup_key": warmup,
                    "transform": self.workload.transform,
                    "uris": self.uris,
                }
            )
        )
        sender_log = log_dir / f"{ns}-enqueue.log"
        self.sender = Managed(
            [str(python), "-m", "benchmarks.celery_enqueue", str(spec)], sender_log, env
        )
        sender = self.sender

        async def ready() -> bool:
            sender.check()
            return b"ready" in sender_log.read_bytes()

        await wait_until(ready, "Celery enqueuer ready")
        sender.tell("warmup")

        async def warm() -> bool:
            return bool(await self.ctx.redis.hlen(warmup))

        await wait_until(warm, "Celery warm-up task", alive=self.worker.check)

    def pids(self) -> list[int]:
        return [self.worker.pid] if self.worker else []

    async def submit(self) -> None:
        assert self.sender is not None
        self.sender.tell("go")
        await asyncio.to_thread(self.sender.process.wait)  # it exits once every task is sent

    async def stop(self, graceful: bool) -> None:
        if self.sender is not None:
            await self.sender.stop(graceful=False)
        if self.worker is not None:
            await self.worker.stop(graceful, signal.SIGTERM)
