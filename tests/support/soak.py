"""What the soak tests share: the jobs they run, and the worker they SIGKILL each round."""

from __future__ import annotations

import random
import signal

from producer import Client
from tests.expected import data_uri
from tests.support.workers import WorkerProcess


async def sleepy_jobs(client: Client, jobs: int, inputs: int, seconds: float) -> list[str]:
    """Enqueue ``jobs`` test-sleep jobs of ``inputs`` distinct inputs each; their ids."""
    return [
        await client.enqueue(
            "test-sleep",
            [data_uri(f"job{j}-item{i}".encode()) for i in range(inputs)],
            options={"seconds": seconds},
        )
        for j in range(jobs)
    ]


def kill_one(live: list[WorkerProcess], rng: random.Random) -> None:
    """SIGKILL one worker of ``live``, chosen by ``rng``; it leaves the list once dead."""
    victim = live.pop(rng.randrange(len(live)))
    victim.signal(signal.SIGKILL)
    victim.wait()
