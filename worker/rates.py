"""Rate limits as configured: requests per second per host (``SLUICE_FETCH_RATES``) and fetches
per second per pipeline (``SLUICE_PIPELINE_RATES``), parsed and matched here. The limiter that
holds every worker of a namespace to them, in Redis, is `worker.fetchers.rate`.

A setting is a comma-separated list of ``name=rate`` or ``name=rate:burst`` (``rate`` in
requests per second, a decimal; ``burst`` how many may go at once after a quiet spell,
default 1). A host is matched exactly, by ``*.domain`` (any host under the domain, each with
a budget of its own), or by ``*`` (every host); the most specific rule wins.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from typing import Literal

from producer.contract.models import PIPELINE_NAME_PATTERN
from producer.contract.settings import MAX_SECONDS

RateKind = Literal["host", "pipeline"]
MAX_RATE_PER_S = 1_000_000.0
MAX_BURST = 100_000
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


@dataclass(frozen=True, slots=True)
class Rate:
    """A steady rate and the burst allowed on top of it."""

    per_s: float
    burst: int = 1

    @property
    def interval_ms(self) -> float:
        return 1000.0 / self.per_s

    @property
    def tolerance_ms(self) -> float:
        """How far ahead of the steady pace a request may go: (burst - 1) intervals."""
        return (self.burst - 1) * self.interval_ms

    def __str__(self) -> str:
        return f"{self.per_s:g}/s" + (f" burst {self.burst}" if self.burst > 1 else "")


@dataclass(frozen=True, slots=True)
class RateRule:
    """One configured limit: what it applies to (a host, ``*.domain``, ``*``, or a pipeline)."""

    kind: RateKind
    name: str
    rate: Rate

    def describe(self) -> str:
        """As a worker's heartbeat lists it: ``host api.example.com 5/s burst 10``."""
        return f"{self.kind} {self.name} {self.rate}"


def parse_rules(entries: list[str], kind: RateKind) -> list[RateRule]:
    """The rules of one setting, or ValueError saying what is wrong with the first bad entry."""
    rules: dict[str, RateRule] = {}
    for entry in entries:
        name, sep, value = entry.rpartition("=")
        name = name.strip().lower()
        if not sep or not name:
            raise ValueError(f"{entry!r} is not name=rate or name=rate:burst (e.g. 'a.com=5:10')")
        problem = (host_problem if kind == "host" else pipeline_problem)(name)
        if problem:
            raise ValueError(f"{entry!r}: {problem}")
        if name in rules:
            raise ValueError(f"{name!r} is named twice")
        rules[name] = RateRule(kind, name, parse_rate(entry, value))
    return list(rules.values())


def parse_rate(entry: str, value: str) -> Rate:
    """``rate`` or ``rate:burst``."""
    per_s_text, _, burst_text = value.partition(":")
    try:
        per_s = float(per_s_text)
        burst = int(burst_text) if burst_text else 1
    except ValueError:
        raise ValueError(
            f"{entry!r}: the rate is requests per second (a number > 0), optionally followed "
            "by ':burst' (a whole number >= 1)"
        ) from None
    if not (math.isfinite(per_s) and 0 < per_s <= MAX_RATE_PER_S):
        raise ValueError(f"{entry!r}: the rate must be > 0 and at most {MAX_RATE_PER_S:g} per s")
    if not 1 <= burst <= MAX_BURST:
        raise ValueError(f"{entry!r}: the burst must be 1 to {MAX_BURST}")
    if burst / per_s > MAX_SECONDS:  # its slots become ms for Redis: past a year, none fits
        raise ValueError(
            f"{entry!r}: the rate must fill the burst within a year (at least burst / "
            f"{MAX_SECONDS} per s, here {burst / MAX_SECONDS:.3g})"
        )
    return Rate(per_s, burst)


def host_problem(name: str) -> str | None:
    """What is wrong with a host rule's name, or None."""
    if name == "*":
        return None
    bare = name.removeprefix("*.").strip("[]")
    try:
        ipaddress.ip_address(bare)
        return None if bare == name.strip("[]") else "a wildcard takes a domain, not an address"
    except ValueError:
        pass
    labels = bare.rstrip(".").split(".")
    if len(bare) <= 253 and all(_LABEL.fullmatch(label) for label in labels):
        return None
    return (
        "not a host: a host name (letters, digits, '-' and '_' in labels joined by '.'; no "
        "port), '*.' and a domain, '*', or an IP address"
    )


def pipeline_problem(name: str) -> str | None:
    if re.fullmatch(PIPELINE_NAME_PATTERN, name):
        return None
    return "not a pipeline name: lower-case letters, digits, '.', '_' and '-'"


class HostRates:
    """Finds the rule for a host: its exact rule, else the longest ``*.domain`` it is under,
    else ``*``."""

    def __init__(self, rules: list[RateRule]) -> None:
        self.any: RateRule | None = None
        self.exact: dict[str, RateRule] = {}
        domains: list[tuple[str, RateRule]] = []
        for rule in rules:
            if rule.name == "*":
                self.any = rule
            elif rule.name.startswith("*."):
                domains.append((rule.name[1:].rstrip("."), rule))  # ".example.org"
            else:
                self.exact[rule.name.strip("[]").rstrip(".")] = rule
        self.domains = sorted(domains, key=lambda pair: -len(pair[0]))

    def __bool__(self) -> bool:
        return bool(self.exact or self.domains or self.any)

    def match(self, host: str) -> RateRule | None:
        host = host.lower().rstrip(".")
        rule = self.exact.get(host)
        if rule is not None:
            return rule
        for suffix, domain_rule in self.domains:
            if host.endswith(suffix):
                return domain_rule
        return self.any
