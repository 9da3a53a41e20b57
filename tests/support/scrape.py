"""Reading a real worker's /metrics, /healthz and /readyz over HTTP in tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[str, float]


def key(name: str, **labels: str) -> str:
    """How a sample is looked up: ``name{label="value",...}`` with labels sorted."""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


async def get(port: int, path: str) -> tuple[int, str]:
    """Status and body of GET http://127.0.0.1:{port}{path}."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()


async def scrape(port: int) -> Samples:
    """Every sample the worker exports, keyed by `key`."""
    status, text = await get(port, "/metrics")
    assert status == 200, text
    return {
        key(sample.name, **sample.labels): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def wait_until(check: Callable[[], Awaitable[bool]], timeout_s: float = 30.0) -> None:
    """Poll ``check`` until it is true; fail past the deadline."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.1)
