"""System 1, the baseline of baselines: one process, one input at a time."""

from __future__ import annotations

import orjson

from benchmarks.systems.base import Managed, System, python_module, wait_until


class Sequential(System):
    name = "sequential"
    process: Managed | None = None

    def given(self) -> str:
        return "1 process, 1 input at a time"

    async def start(self) -> None:
        spec = self.ctx.log_dir / f"{self.ctx.namespace}.json"
        spec.write_bytes(
            orjson.dumps(
                {
                    "redis_url": self.ctx.redis_url,
                    "results_key": self.results_key,
                    "transform": self.workload.transform,
                    "uris": self.uris,
                }
            )
        )
        log = self.ctx.log_dir / f"{self.ctx.namespace}.log"
        self.process = Managed(python_module("benchmarks.systems.sequential_main", str(spec)), log)
        self.processes.append(self.process)

        async def ready() -> bool:
            return b"ready" in log.read_bytes()

        assert self.process is not None
        await wait_until(ready, "sequential process ready", alive=self.process.check)

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process else []

    async def submit(self) -> None:
        assert self.process is not None
        self.process.tell("go")

    async def stop(self, graceful: bool) -> None:
        if self.process is not None:
            await self.process.stop(graceful)
