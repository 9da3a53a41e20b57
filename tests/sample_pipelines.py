"""Pipelines the tests load into real workers with SLUICE_PIPELINES=tests.sample_pipelines."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from worker import fetcher, pipeline


@pipeline("test-pid")
def report_pid(data: bytes, options: Mapping[str, Any]) -> dict[str, Any]:
    """Which pool process ran the transform."""
    return {"pid": os.getpid(), "bytes": len(data)}


@pipeline("test-raise")
def raise_on_bad(data: bytes, options: Mapping[str, Any]) -> dict[str, Any]:
    """Raises for inputs that contain b"bad"."""
    if b"bad" in data:
        raise ValueError("this input is bad")
    return {"bytes": len(data)}


@pipeline("test-sleep")
def sleep_then_echo(data: bytes, options: Mapping[str, Any]) -> dict[str, Any]:
    """Sleeps ``options['seconds']`` (default 0.05) then echoes the size."""
    time.sleep(float(options.get("seconds", 0.05)))
    return {"bytes": len(data)}


@pipeline("test-exit")
def exit_on_crash(data: bytes, options: Mapping[str, Any]) -> dict[str, Any]:
    """Kills its own process for inputs that contain b"crash"."""
    if b"crash" in data:
        os._exit(3)
    return {"bytes": len(data)}


@pipeline("test-hang")
def hang(data: bytes, options: Mapping[str, Any]) -> dict[str, Any]:
    """For inputs that contain b"hang": records its pid in ``options['pid_dir']``, then hangs."""
    if b"hang" in data:
        with open(os.path.join(str(options["pid_dir"]), f"{os.getpid()}.pid"), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(3600)
    return {"bytes": len(data)}


class EchoFetcher:
    """``echo:TEXT`` fetches TEXT itself: a user-defined URI scheme."""

    async def fetch(self, uri: str, max_bytes: int) -> bytes:
        return uri.partition(":")[2].encode()[:max_bytes]

    async def close(self) -> None:
        return None


@fetcher("echo")
def echo_fetcher(config: object) -> EchoFetcher:
    return EchoFetcher()
