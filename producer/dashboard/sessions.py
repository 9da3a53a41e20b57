"""Login sessions, held in this process: the cookie carries a random id, logging out forgets
it, so a copied cookie stops working at logout (a restart logs everyone out)."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_SESSIONS = 10_000  # oldest dropped past this: only holders of the token can open one


class Sessions:
    """Open sessions by id, each valid until its expiry."""

    def __init__(
        self,
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
        limit: int = MAX_SESSIONS,
    ) -> None:
        self.max_age_s, self.clock, self.limit = max_age_s, clock, limit
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def open(self) -> str:
        """A new session's id, valid for ``max_age_s``."""
        session_id = secrets.token_urlsafe(32)
        self._expiry[session_id] = self.clock() + self.max_age_s
        while len(self._expiry) > self.limit:
            self._expiry.popitem(last=False)
        return session_id

    def valid(self, session_id: str) -> bool:
        expiry = self._expiry.get(session_id)
        if expiry is None:
            return False
        if expiry <= self.clock():
            del self._expiry[session_id]
            return False
        return True

    def close(self, session_id: str) -> None:
        self._expiry.pop(session_id, None)
