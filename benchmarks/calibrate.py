"""The physical limit's CPU term: what the transform of every input costs, measured in-process.

Measured twice: in this process alone, and in one process per core at once, each timing its
own share with ``process_time``. The second is the one the limit divides by the cores: on a
VM whose cores share caches and memory (and boost less when all are busy), a transform costs
more CPU when every core runs one, and a limit that assumed otherwise would be one no system
could reach. Both figures go in results.json.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

from benchmarks.transforms import TRANSFORMS
from benchmarks.workloads import CALIBRATION_SAMPLE, Workload, payload


@dataclass(frozen=True)
class Calibration:
    """Total transform CPU seconds over every input of one run."""

    alone_s: float  # one process, the machine otherwise idle
    parallel_s: float  # one process per core, all at once

    @property
    def parallel_slowdown(self) -> float:
        return self.parallel_s / self.alone_s if self.alone_s else 1.0


def _sample(count: int) -> list[int]:
    step = max(1, count // CALIBRATION_SAMPLE)
    return list(range(0, count, step))


def _cpu_of(transform: str, kind: str, indices: list[int]) -> float:
    """CPU seconds of the transform over these inputs (their bytes made before the clock)."""
    function = TRANSFORMS[transform]
    datas = [payload(kind, i) for i in indices]
    if datas:
        function(datas[0], {})  # warm: regex compiled, caches filled
    start = time.process_time()
    for data in datas:
        function(data, {})
    return time.process_time() - start


def calibrate(workload: Workload, count: int, cores: int) -> Calibration:
    """Measure a sample of up to CALIBRATION_SAMPLE inputs and extrapolate to ``count``."""
    sample = _sample(count)
    scale = count / len(sample)
    alone = _cpu_of(workload.transform, workload.kind, sample) * scale
    shares = [sample[i::cores] for i in range(cores)]
    # every process times the whole sample's share of its own; they run side by side
    with ProcessPoolExecutor(cores, mp_context=get_context("fork")) as pool:
        list(pool.map(_noop, range(cores)))  # all started before any is timed
        kinds = [workload.kind] * cores
        times = list(pool.map(_cpu_of, [workload.transform] * cores, kinds, shares))
    return Calibration(alone_s=alone, parallel_s=sum(times) * scale)


def _noop(_: int) -> None:
    return None
