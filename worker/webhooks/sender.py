"""One POST of a webhook, through the same address guard as the HTTP fetcher: a private
address is refused unless SLUICE_FETCH_ALLOW allows it, and redirects are not followed (a
Location could point anywhere).

Each answer is judged once: 2xx delivered; 408, 429, 5xx, a timeout or a lost connection
tried again; any other status (3xx, 4xx) and a refused address failed at once.
"""

from __future__ import annotations

from typing import NamedTuple

import aiohttp
from yarl import URL

from worker.fetchers.http import shown
from worker.fetchers.retry import parse_retry_after
from worker.fetchers.session import GuardedSession
from worker.fetchers.ssrf import AddressPolicy, RefusedDestination
from worker.webhooks.store import Settled

RETRIED_STATUSES = frozenset({408, 429})
CONNECTIONS = 16  # POSTs in flight at once, per worker
MAX_RETRY_AFTER_S = 600.0  # a receiver's Retry-After is kept up to this (the backoff's cap)


class Answer(NamedTuple):
    """How one POST went."""

    settled: Settled
    error: str = ""  # why it did not deliver
    retry_after_s: float | None = None  # the receiver's Retry-After, if it sent one


class Sender:
    """One session for every POST (`worker.fetchers.session`), through the address guard."""

    def __init__(self, policy: AddressPolicy, timeout_s: float) -> None:
        self.policy, self.timeout_s = policy, timeout_s
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = GuardedSession(policy, timeout, CONNECTIONS)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        target = URL(url)
        try:
            self.policy.check_literal(target.host or "")
            async with self._session.get().post(
                target, data=body, headers=headers, allow_redirects=False
            ) as resp:
                return _judge(resp, target)
        except RefusedDestination as exc:
            return Answer(Settled.FAILED, f"{exc} (webhook to {shown(target)})")
        except TimeoutError:
            return Answer(Settled.RETRY, f"timed out after {self.timeout_s:g} s: {shown(target)}")
        except aiohttp.ClientError as exc:
            detail = str(exc) or type(exc).__name__
            return Answer(Settled.RETRY, f"cannot reach {shown(target)}: {detail}")

    async def close(self) -> None:
        await self._session.close()


def _judge(resp: aiohttp.ClientResponse, url: URL) -> Answer:
    status = resp.status
    if 200 <= status < 300:
        return Answer(Settled.DELIVERED)
    message = f"HTTP {status} from {shown(url)}"
    if status in RETRIED_STATUSES or status >= 500:
        # not the fetcher's 30 s cap: a delivery is put off, it holds no slot meanwhile
        retry_after = parse_retry_after(resp.headers.get("Retry-After"), cap_s=MAX_RETRY_AFTER_S)
        return Answer(Settled.RETRY, message, retry_after)
    if 300 <= status < 400:
        return Answer(Settled.FAILED, f"{message}: redirects are not followed, not retried")
    return Answer(Settled.FAILED, f"{message}: not retried")
