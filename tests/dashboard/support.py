"""Helpers for the dashboard tests: a dashboard on a free port, HTTP calls, polling."""

from __future__ import annotations

import asyncio
import json as jsonlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from producer.dashboard.settings import DashboardSettings
from producer.redis.typed import Redis

TOKEN = "dashboard-test-token-0123"


@dataclass(frozen=True)
class Dashboard:
    """A running dashboard: its base URL and the settings it was started with."""

    url: str
    settings: DashboardSettings

    def at(self, path: str) -> str:
        return self.url + path


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, headers and the body (parsed JSON when it is JSON)."""

    status: int
    headers: dict[str, str]
    body: Any


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    token: str | None = None,
    json: Any = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request; ``token`` goes in ``Authorization: Bearer``; redirects are not followed."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with session.request(
        method, url, json=json, data=data, headers=sent, allow_redirects=False
    ) as response:
        text = await response.text()
        is_json = response.content_type == "application/json"
        body = jsonlib.loads(text) if is_json and text else text
        return Reply(response.status, dict(response.headers), body)


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 30.0, what: str = "condition"
) -> None:
    """Poll ``check`` until it is true; fail past the deadline."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout_s} s")
        await asyncio.sleep(0.1)


async def namespace_keys(redis: Redis, namespace: str) -> list[str]:
    """Every key of the namespace: empty when nothing was enqueued."""
    return sorted([k.decode() async for k in redis.scan_iter(match=f"{namespace}:*")])
