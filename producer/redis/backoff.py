"""Pauses between tries: the one policy for every retry in Sluice, so they cannot drift apart.

Each pause doubles from the first, up to a cap (`delay_s`). Retries that many clients may
make at the same moment (a job's units after an error, fetches of one failing host) add
jitter, each pause between half and all of its delay (`jittered_s`), so they do not all come
back at once. `Backoff` paces one operation's tries up to a deadline: a queue at its cap,
writes retried while Redis fails over or comes back, waiting for Redis at start-up.
"""

from __future__ import annotations

import asyncio
import random
import time

# Doubling stops adding after this many tries: the cap is long reached, and 2.0 ** n
# overflows past 1023 (a listener that retries for as long as the process lives).
_MOST_DOUBLINGS = 62


def delay_s(tries: int, first_s: float, max_s: float) -> float:
    """The pause after ``tries`` failed tries (1: the first pause): ``first_s`` doubled for
    each try after the first, at most ``max_s``."""
    return min(max_s, first_s * 2.0 ** min(max(tries - 1, 0), _MOST_DOUBLINGS))


def jittered_s(tries: int, first_s: float, max_s: float) -> float:
    """`delay_s` with jitter: between half and all of it."""
    return delay_s(tries, first_s, max_s) * random.uniform(0.5, 1.0)


class Backoff:
    """Pauses that double from ``first_s`` up to ``max_s``; ``timeout_s`` None: no deadline."""

    def __init__(self, timeout_s: float | None, *, first_s: float, max_s: float) -> None:
        self.deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.first_s, self.max_s = first_s, max_s
        self.tries = 0  # pauses taken

    @property
    def delay(self) -> float:
        """The next pause."""
        return delay_s(self.tries + 1, self.first_s, self.max_s)

    def expired(self) -> bool:
        """Whether the next pause would end past the deadline."""
        return self.deadline is not None and time.monotonic() + self.delay > self.deadline

    async def pause(self) -> None:
        await asyncio.sleep(self.delay)
        self.tries += 1
