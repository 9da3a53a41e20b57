"""Real worker processes (`python -m worker`, or another command) for tests, stopped with real
signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from redis.cluster import RedisCluster

from producer.contract.keys import Keys
from producer.redis.typed import SyncRedis
from tests.support.processes import terminate


@dataclass
class WorkerProcess:
    """A `python -m worker` subprocess; its output goes to ``log_path``."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "worker"])
    cwd: Path | None = None

    def start(self) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, redis_url: str, namespace: str, timeout_s: float = 30.0) -> WorkerProcess:
        """Wait until this worker has registered its heartbeat."""
        client: SyncRedis = SyncRedis.from_url(redis_url)
        if self.env.get("SLUICE_REDIS_CLUSTER") == "true":  # the workers key's node
            client.close()
            client = cast(SyncRedis, RedisCluster.from_url(redis_url))
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"worker exited with {self.process.returncode}:\n{self.log()}"
                    )
                name = self.env.get("SLUICE_WORKER_NAME")
                for raw in client.zrange(Keys(namespace).workers, 0, -1):
                    if raw.decode() == name or raw.decode().endswith(f":{self.pid}"):
                        return self
                time.sleep(0.05)
        finally:
            client.close()
        raise TimeoutError(f"worker not ready after {timeout_s} s:\n{self.log()}")

    def events(self, *names: str) -> list[dict[str, object]]:
        """The JSON log lines of these events (SLUICE_LOG_FORMAT=json), in order."""
        lines = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("event") in names:
                    lines.append(entry)
        return lines

    def units_started(self) -> int:
        """Unit attempts this worker started (a job's first unit logs "job started")."""
        return len(self.events("job started", "unit started"))

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signum)

    def wait(self, timeout_s: float = 30.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout_s)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL past the timeout; the exit code, or None if killed."""
        return terminate(self.process, timeout_s)


@dataclass
class WorkerFactory:
    """Starts workers sharing one base environment; stops them all at the end of a test."""

    base_env: dict[str, str]
    log_dir: Path
    redis_url: str
    namespace: str
    started: list[WorkerProcess] = field(default_factory=list)

    def __call__(self, **settings: object) -> WorkerProcess:
        """Start a worker with these SLUICE_* settings; ``wait=False`` skips waiting for it."""
        wait = bool(settings.pop("wait", True))
        env = dict(self.base_env)
        env.update({f"SLUICE_{k.upper()}": str(v) for k, v in settings.items()})
        log = self.log_dir / f"worker-{len(self.started)}.log"
        worker = WorkerProcess(env=env, log_path=log).start()
        self.started.append(worker)
        if wait:
            worker.wait_ready(str(settings.get("redis_url", self.redis_url)), self.namespace)
        return worker

    def many(self, count: int, **settings: object) -> list[WorkerProcess]:
        """Start ``count`` workers at once, then wait for each to be ready."""
        started = [self(wait=False, **settings) for _ in range(count)]
        for worker in started:
            worker.wait_ready(self.redis_url, self.namespace)
        return started

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()
