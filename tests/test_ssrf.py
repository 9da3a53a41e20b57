"""The HTTP fetcher's address guard: non-public destinations are refused before connecting."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from tests.test_fetchers import Site, answers, http_fetch, redirect, serve
from worker.errors import FetchError
from worker.fetchers.ssrf import AddressPolicy, GuardedResolver, RefusedDestination, is_public

REFUSED = r"is not a public address \(allow it with SLUICE_FETCH_ALLOW\)"


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    """A local server with a document at /doc."""
    async with serve() as s:
        s.routes["doc"] = answers(lambda: web.Response(text="inside"))
        yield s


@pytest.fixture
async def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Host names the test maps to addresses, resolved by the loop's own getaddrinfo."""
    names: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, **kwargs: Any) -> Any:
        return await real(names.get(host, host), port, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return names


@pytest.fixture
async def connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every address a socket connects to during the test (connections still go through)."""
    seen: list[Any] = []
    loop = asyncio.get_running_loop()
    real = loop.sock_connect

    async def sock_connect(sock: socket.socket, address: Any) -> None:
        seen.append(address)
        await real(sock, address)

    monkeypatch.setattr(loop, "sock_connect", sock_connect)
    return seen


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:a00:1::",
        "64:ff9b::a9fe:a9fe",
    ],
)
def test_non_public_addresses(address: str) -> None:
    """Loopback, private, link-local, shared, multicast, reserved, embedded: none is public."""
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses(address: str) -> None:
    """Globally routable unicast addresses are public."""
    assert is_public(ipaddress.ip_address(address))


def test_allow_list_parses_networks_and_names() -> None:
    """Entries are CIDR networks, single addresses or host names (any case, trailing dot)."""
    policy = AddressPolicy.from_allow(["127.0.0.0/8", "10.1.2.3", "Files.Internal."])
    allowed = ["127.9.9.9", "::ffff:127.0.0.1", "10.1.2.3", "8.8.8.8"]
    assert all(policy.allows_address(ipaddress.ip_address(a)) for a in allowed)
    assert not policy.allows_address(ipaddress.ip_address("10.1.2.4"))
    assert policy.allows_name("files.internal") and policy.allows_name("FILES.internal.")
    assert not policy.allows_name("other.internal")


def test_literal_verdicts_are_per_policy_and_repeat() -> None:
    """A remembered verdict is the same the second time, and belongs to its own policy."""
    strict, loopback = AddressPolicy(), AddressPolicy.from_allow(["127.0.0.0/8"])
    for _ in range(2):
        with pytest.raises(RefusedDestination, match=REFUSED):
            strict.check_literal("127.0.0.1")
        loopback.check_literal("127.0.0.1")  # allowed by its network
        with pytest.raises(RefusedDestination, match="not a valid IP address"):
            loopback.check_literal("127.1")
        strict.check_literal("files.example")  # a name: left to the resolver


class StubResolver(AbstractResolver):
    """Answers every name with fixed addresses."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {"hostname": host, "host": a, "port": port, "family": family, "proto": 0, "flags": 0}
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


async def test_resolver_keeps_only_allowed_addresses() -> None:
    """Refused addresses are dropped; a name with none left is refused; allowed names keep all."""
    policy = AddressPolicy.from_allow(["db.internal"])
    mixed = GuardedResolver(policy, StubResolver("10.0.0.7", "93.184.216.34"))
    assert [r["host"] for r in await mixed.resolve("example.com", 80)] == ["93.184.216.34"]
    private = GuardedResolver(policy, StubResolver("10.0.0.7"))
    with pytest.raises(
        RefusedDestination, match=rf"refused: 10\.0\.0\.7 \(from evil\.com\) {REFUSED}"
    ):
        await private.resolve("evil.com", 80)
    assert len(await private.resolve("db.internal", 80)) == 1


async def test_loopback_is_refused_without_allow(site: Site, connects: list[Any]) -> None:
    """127.0.0.1 is refused by default, before any connection, and not retried."""
    start = time.monotonic()
    with pytest.raises(FetchError, match=rf"^refused: 127\.0\.0\.1 {REFUSED}$"):
        await http_fetch(site.url("doc"), fetch_allow=[], fetch_retries=3, fetch_backoff_s=5)
    assert time.monotonic() - start < 2
    assert connects == [] and site.hits["doc"] == 0


async def test_loopback_is_allowed_by_network(site: Site) -> None:
    """SLUICE_FETCH_ALLOW=127.0.0.0/8 lets the fetcher reach loopback."""
    assert await http_fetch(site.url("doc"), fetch_allow=["127.0.0.0/8"]) == b"inside"


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("169.254.169.254", "169.254.169.254"),
        ("10.0.0.1", "10.0.0.1"),
        ("[::ffff:10.0.0.1]", "::ffff:a00:1"),
        ("[::1]", "::1"),
    ],
)
async def test_ip_literals_are_refused_before_connecting(
    connects: list[Any], host: str, shown: str
) -> None:
    """IP-literal hosts (never resolved by aiohttp) are checked and refused without connecting."""
    with pytest.raises(FetchError, match=rf"^refused: {shown} {REFUSED}$"):
        await http_fetch(f"http://{host}/latest/meta-data/", fetch_allow=["127.0.0.0/8"])
    assert connects == []


@pytest.mark.parametrize("host", ["2130706433", "127.1", "0177.0.0.1"])
async def test_odd_numeric_hosts_are_refused(connects: list[Any], host: str) -> None:
    """Numeric hosts that are not canonical addresses (decimal, short, octal) are refused."""
    with pytest.raises(FetchError, match=rf"refused: {host} is not a valid IP address"):
        await http_fetch(f"http://{host}/", fetch_allow=[])
    assert connects == []


async def test_host_names_are_checked_by_address(site: Site, fake_dns: dict[str, str]) -> None:
    """A name resolving to a refused address is refused; one on the allow-list is fetched."""
    fake_dns.update({"files.internal": "127.0.0.1", "other.internal": "127.0.0.1"})
    allow = ["files.internal"]
    assert await http_fetch(site.url("doc", "files.internal"), fetch_allow=allow) == b"inside"
    with pytest.raises(FetchError, match=r"refused: 127\.0\.0\.1 \(from other\.internal\)"):
        await http_fetch(site.url("doc", "other.internal"), fetch_allow=allow)
    assert site.hits["doc"] == 1


@pytest.mark.parametrize("target", ["evil.internal", "127.0.0.1"])
async def test_redirect_to_a_refused_host_is_refused(
    site: Site, fake_dns: dict[str, str], target: str
) -> None:
    """An allowed host redirecting to a refused name or IP literal is refused at that hop,
    and the refusal names the hop's URL (the record names only the input's)."""
    fake_dns.update({"files.internal": "127.0.0.1", "evil.internal": "127.0.0.1"})
    site.routes["hop"] = redirect(site.url("doc", target))
    hop = re.escape(site.url("doc", target))
    with pytest.raises(
        FetchError, match=rf"refused: 127\.0\.0\.1 .*{REFUSED}, redirected to {hop}$"
    ):
        await http_fetch(site.url("hop", "files.internal"), fetch_allow=["files.internal"])
    assert site.hits["hop"] == 1 and site.hits["doc"] == 0
