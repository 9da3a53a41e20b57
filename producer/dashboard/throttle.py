"""Failed logins counted per client address, in this process's memory (not shared between
dashboards; behind a proxy every client shares the proxy's address).

Past `MAX_FAILURES` wrong tokens within `WINDOW_S` — at the login form or in an
``Authorization: Bearer`` header — an address is refused (429, with ``Retry-After``) without
its token being looked at, until its oldest failure in the window ages out.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_FAILURES = 10
WINDOW_S = 60.0
MAX_ADDRESSES = 10_000  # addresses remembered; the least recently failed are forgotten first


class LoginThrottle:
    """Recent failures per address, and whether an address may try again."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures, self.window_s, self.clock = max_failures, window_s, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after_s(self, address: str) -> int | None:
        """Whole seconds until ``address`` may try a token again; None if it may now."""
        failures = self._failures.get(address)
        if failures is None or len(self._expire(failures)) < self.max_failures:
            return None
        return max(1, math.ceil(failures[0] + self.window_s - self.clock()))

    def failed(self, address: str) -> None:
        """Count a wrong token from ``address``."""
        failures = self._failures.setdefault(address, deque(maxlen=self.max_failures))
        self._expire(failures).append(self.clock())
        self._failures.move_to_end(address)
        while len(self._failures) > MAX_ADDRESSES:
            self._failures.popitem(last=False)

    def _expire(self, failures: deque[float]) -> deque[float]:
        """``failures`` without those older than the window."""
        while failures and failures[0] <= self.clock() - self.window_s:
            failures.popleft()
        return failures
