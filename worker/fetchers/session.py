"""An aiohttp session whose every connection passes the address guard (`worker.fetchers.ssrf`):
the HTTP fetcher's and the webhooks' one way out of the worker.

Made on first use, inside the running loop; no proxy from the environment (it would bypass
the guard) and no cookies (a cookie one response sets must never go with the next request,
which may be another job's).
"""

from __future__ import annotations

import aiohttp

from worker.fetchers.ssrf import AddressPolicy, GuardedResolver


class GuardedSession:
    def __init__(
        self, policy: AddressPolicy, timeout: aiohttp.ClientTimeout, limit: int, per_host: int = 0
    ) -> None:
        self.policy, self.timeout, self.limit, self.per_host = policy, timeout, limit, per_host
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._resolver = GuardedResolver(self.policy)
            connector = aiohttp.TCPConnector(
                limit=self.limit, limit_per_host=self.per_host, resolver=self._resolver
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeout,
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._resolver is not None:
            await self._resolver.close()  # the connector does not close a resolver it was given
            self._resolver = None
