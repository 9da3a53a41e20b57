"""Another host on this machine, for tests of a network partition: a network namespace joined
to this one by a veth pair, with addresses of its own, whose link a test can cut and heal.

Traffic stays on this machine. Needs root and `ip` (iproute2); `other_host_or_skip` skips the
test and says why when either is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

NOBODY = "02:00:00:5e:10:01"  # a locally administered hardware address no device here has


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@dataclass(frozen=True)
class OtherHost:
    """A namespace reached at ``address`` from here; it reaches this host at ``gateway``."""

    name: str
    link: str  # this side's end of the veth pair
    peer: str  # its end, inside the namespace
    address: str
    gateway: str

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def cut(self) -> None:
        """Partition it: every frame between it and here goes to a hardware address nobody
        has (a permanent neighbour entry each way) and is dropped without a word, so its
        open connections hang as over a real partition; a route or a link taken down would
        fail them at once instead."""
        for side, address, dev in self._sides():
            ip(*side, "neigh", "replace", address, "lladdr", NOBODY, "dev", dev, "nud", "permanent")

    def heal(self) -> None:
        """Each side learns the other's address again (ARP), and the held packets get
        through at their next retransmission."""
        for side, address, dev in self._sides():
            ip(*side, "neigh", "del", address, "dev", dev)

    def _sides(self) -> list[tuple[list[str], str, str]]:
        """Per side (`ip` options, the other side's address, the device toward it)."""
        return [([], self.address, self.link), (["-n", self.name], self.gateway, self.peer)]


@contextmanager
def other_host(tag: str) -> Iterator[OtherHost]:
    """A namespace with a /30 of 10.213.0.0/16 (chosen by pid, so parallel runs differ)."""
    block = (os.getpid() % 16_000) * 4
    gateway = f"10.213.{block // 256}.{block % 256 + 1}"
    address = f"10.213.{block // 256}.{block % 256 + 2}"
    name, here, there = f"sl-{tag}-{os.getpid()}", f"slh{os.getpid()}", f"sln{os.getpid()}"
    ip("netns", "add", name)
    try:
        ip("link", "add", here, "type", "veth", "peer", "name", there)
        ip("link", "set", there, "netns", name)
        ip("addr", "add", f"{gateway}/30", "dev", here)
        ip("link", "set", here, "up")
        ip("-n", name, "addr", "add", f"{address}/30", "dev", there)
        ip("-n", name, "link", "set", there, "up")
        ip("-n", name, "link", "set", "lo", "up")
        yield OtherHost(name, here, there, address, gateway)
    finally:
        ip("link", "del", here, check=False)  # takes its peer with it
        ip("netns", "del", name, check=False)


@contextmanager
def other_host_or_skip(tag: str) -> Iterator[OtherHost]:
    """`other_host`, or the test skipped naming what this machine lacks."""
    if shutil.which("ip") is None:
        pytest.skip("a network namespace needs `ip` (iproute2), not installed here")
    if os.geteuid() != 0:
        pytest.skip("a network namespace needs root")
    probe = f"sl-probe-{os.getpid()}"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        pytest.skip(f"no network namespace here: ip netns add: {made.stderr.strip()}")
    ip("netns", "del", probe, check=False)
    with other_host(tag) as host:
        yield host
