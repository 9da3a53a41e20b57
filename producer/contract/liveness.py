"""When a worker counts as alive: the one home of its heartbeat's timing.

A worker writes its heartbeat every BEAT_INTERVAL_S (`worker.observe.heartbeat`): its score
in ``{ns}:workers`` and its details hash. Readers judge it by the age of its last beat:

- live, for `Client.workers`, the queue figures (`QueueStats.workers`, the dashboard) and
  the embedded server, which keeps running while another worker is live: at most LIVE_S
  (six missed beats; its details hash expires then too);
- healthy, for `sluice-worker --check`: at most HEALTHY_S (three missed beats), so a probe
  notices a stuck worker sooner than a listing stops showing it;
- forgotten: past FORGOTTEN_S its entry leaves the workers set.
"""

from __future__ import annotations

BEAT_INTERVAL_S = 5.0
LIVE_S = 30
HEALTHY_S = 3 * BEAT_INTERVAL_S
FORGOTTEN_S = 10 * LIVE_S


def live_since_ms(now_ms: int) -> int:
    """The oldest last beat (ms epoch) of a worker still live at ``now_ms``."""
    return now_ms - LIVE_S * 1000
