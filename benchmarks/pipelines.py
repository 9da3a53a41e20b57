"""The bench's transforms registered as Sluice pipelines: run workers with
``SLUICE_PIPELINES=benchmarks.pipelines``. (``mixed`` uses the built-in ``text-stats``.)"""

from __future__ import annotations

from benchmarks.transforms import cpu_burn, trivial
from worker import pipeline

pipeline("bench-cpu")(cpu_burn)
pipeline("bench-trivial")(trivial)
