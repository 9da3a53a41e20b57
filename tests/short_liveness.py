"""Shorter schedule liveness for worker processes in tests (SLUICE_PIPELINES=
tests.short_liveness): a schedule's definition counts as no longer held 2 s after its last
holder's beat, and workers beat every 0.5 s, so a take-over is seen in seconds, not LIVE_S."""

from __future__ import annotations

from worker.schedules.scheduler import Scheduler

Scheduler.live_s = 2
Scheduler.beat_s = 0.5
