"""Sluice's installed version: what `sluice --version` prints and what each worker reports
(its heartbeat, ``sluice_worker_info`` on /metrics)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def sluice_version() -> str:
    """The installed package's version ("unknown" when run from a tree never installed)."""
    try:
        return version("sluice")
    except PackageNotFoundError:
        return "unknown"
