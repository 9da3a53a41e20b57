"""The systems under test, by the names used on the command line."""

from __future__ import annotations

import re

from benchmarks.systems.arq_system import ArqInline, ArqNoop, ArqPool
from benchmarks.systems.base import Context, System
from benchmarks.systems.celery_system import CelerySystem
from benchmarks.systems.sequential import Sequential
from benchmarks.systems.sluice_system import SluiceSystem, SluiceX2, SluiceX4

ALL = (Sequential, ArqInline, ArqPool, ArqNoop, CelerySystem, SluiceSystem, SluiceX2, SluiceX4)
SYSTEMS: dict[str, type[System]] = {cls.name: cls for cls in ALL}
BASELINES = ("sequential", "arq-inline", "arq-pool", "celery")
# systems that run only some workloads: Sluice's fleets on the scale-out ones, and on tiny
# for Redis's cost per job with several workers claiming
FLEET_WORKLOADS = ("tiny", "scale-backlog", "scale-big")
ONLY_FOR = {"arq-noop": ("tiny",), "sluice×2": FLEET_WORKLOADS, "sluice×4": FLEET_WORKLOADS}
FLEET_NAME = re.compile(r"sluice[x*](\d+)")  # sluicex4 or sluice*4: easier to type than ×

__all__ = ["BASELINES", "ONLY_FOR", "SYSTEMS", "Context", "System"]


def resolve(names: str) -> list[str]:
    """System names from a comma-separated list ("all" for every one)."""
    if names.strip() == "all":
        return list(SYSTEMS)
    chosen = [FLEET_NAME.sub(r"sluice×\1", name.strip()) for name in names.split(",")]
    chosen = [name for name in chosen if name]
    for name in chosen:
        if name not in SYSTEMS:
            raise SystemExit(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")
    return chosen
