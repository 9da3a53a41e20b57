"""The systems under test, by the names used on the command line."""

from __future__ import annotations

import re

from benchmarks.systems.arq_system import ArqInline, ArqNoop, ArqPool
from benchmarks.systems.base import Context, System
from benchmarks.systems.celery_system import CelerySystem
from benchmarks.systems.sequential import Sequential
from benchmarks.systems.sluice_cluster import SluiceCluster, SluiceClusterX2
from benchmarks.systems.sluice_system import SluiceSystem, SluiceX2, SluiceX4

ALL = (
    Sequential,
    ArqInline,
    ArqPool,
    ArqNoop,
    CelerySystem,
    SluiceSystem,
    SluiceX2,
    SluiceX4,
    SluiceCluster,
    SluiceClusterX2,
)
SYSTEMS: dict[str, type[System]] = {cls.name: cls for cls in ALL}
BASELINES = ("sequential", "arq-inline", "arq-pool", "celery")
# systems that run only some workloads: Sluice's fleets on the scale-out ones, and on tiny
# for Redis's cost per job with several workers claiming; Sluice on a cluster on tiny only
# (jobs/s and Redis's cost per job: the scale-out ones wait on fetches, not on Redis)
FLEET_WORKLOADS = ("tiny", "scale-backlog", "scale-big")
ONLY_FOR = {
    "arq-noop": ("tiny",),
    **{name: FLEET_WORKLOADS for name in ("sluice×2", "sluice×4")},
    **{name: ("tiny",) for name in ("sluice-cluster", "sluice-cluster×2")},
}
# sluicex4, sluice*4, sluice-clusterx2: easier to type than ×
FLEET_NAME = re.compile(r"(sluice(?:-cluster)?)[x*](\d+)")

__all__ = ["BASELINES", "ONLY_FOR", "SYSTEMS", "Context", "System"]


def resolve(names: str) -> list[str]:
    """System names from a comma-separated list ("all" for every one)."""
    if names.strip() == "all":
        return list(SYSTEMS)
    chosen = [FLEET_NAME.sub(r"\1×\2", name.strip()) for name in names.split(",")]
    chosen = [name for name in chosen if name]
    for name in chosen:
        if name not in SYSTEMS:
            raise SystemExit(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")
    return chosen
