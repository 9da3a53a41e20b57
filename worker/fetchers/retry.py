"""Retrying transient fetch failures: doubling pauses with jitter (`producer.redis.backoff`,
the one policy for every retry), or a Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from producer.redis.backoff import jittered_s
from worker.errors import FetchError

MAX_BACKOFF_S = 30.0
# A server asking for a long pause would hold a fetch slot that long: its Retry-After is
# waited for at most this long before the next try (which counts as one of the retries).
MAX_RETRY_AFTER_S = 30.0

T = TypeVar("T")


class Transient(Exception):
    """A failure worth another try (connection error, timeout, 5xx, 429)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def parse_retry_after(
    value: str | None, now: datetime | None = None, cap_s: float = MAX_RETRY_AFTER_S
) -> float | None:
    """Seconds to wait from a Retry-After header (RFC 9110: delay-seconds or an HTTP date),
    at most ``cap_s``; None if it is neither."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit alone takes '²' and '٣' too
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), cap_s)


async def with_retries(attempt: Callable[[], Awaitable[T]], retries: int, base_s: float) -> T:
    """Run ``attempt`` until it succeeds or has failed transiently ``retries`` + 1 times."""
    for retry in range(retries + 1):
        try:
            return await attempt()
        except Transient as exc:
            if retry == retries:
                tries = f" ({retry + 1} attempts)" if retry else ""
                raise FetchError(f"{exc}{tries}") from None
            wait = exc.retry_after_s
            await asyncio.sleep(
                jittered_s(retry + 1, base_s, MAX_BACKOFF_S) if wait is None else wait
            )
    raise AssertionError("unreachable")  # the loop always returns or raises
