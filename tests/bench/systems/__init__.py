"""The systems under test, by the names used on the command line."""

from __future__ import annotations

from tests.bench.systems.arq_system import ArqInline, ArqNoop, ArqPool
from tests.bench.systems.base import Context, System
from tests.bench.systems.celery_system import CelerySystem
from tests.bench.systems.sequential import Sequential
from tests.bench.systems.sluice_system import SluiceSystem

SYSTEMS: dict[str, type[System]] = {
    cls.name: cls for cls in (Sequential, ArqInline, ArqPool, ArqNoop, CelerySystem, SluiceSystem)
}
BASELINES = ("sequential", "arq-inline", "arq-pool", "celery")
ONLY_FOR = {"arq-noop": ("tiny",)}  # systems that run only some workloads

__all__ = ["BASELINES", "ONLY_FOR", "SYSTEMS", "Context", "System"]


def resolve(names: str) -> list[str]:
    """System names from a comma-separated list ("all" for every one)."""
    if names.strip() == "all":
        return list(SYSTEMS)
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    for name in chosen:
        if name not in SYSTEMS:
            raise SystemExit(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")
    return chosen
