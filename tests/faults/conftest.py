"""Fixtures for fault tests: a private server each test may stop and restart."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.support.servers import Server, valkey_binary


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[Server]:
    """A server of this test's own (AOF on), free to be killed and restarted."""
    srv = Server(valkey_binary(), tmp_path / "private-valkey").start()
    yield srv
    srv.stop()


async def poll(
    check: Callable[[], Awaitable[bool]], timeout_s: float, step_s: float = 0.05
) -> float:
    """Wait until ``check()`` is true; return the seconds it took, or fail past the deadline."""
    import asyncio

    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(step_s)
    return time.monotonic() - start
