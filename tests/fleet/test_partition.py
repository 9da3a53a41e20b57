"""A worker on another host, cut off from Redis by a network partition while it runs a job: it
stops the unit when its lease can no longer be sure, another worker takes the job over, and
when the link heals nothing the cut-off worker had in flight lands; then it takes work again.

Unlike SIGSTOP (tests/fleet/test_stale.py), the cut-off worker keeps running through the
partition: its clocks go on, its renewals and writes hang on open sockets, and they all
arrive at once when the network comes back.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from producer import Client, ClientSettings, JobState
from tests.conftest import worker_env
from tests.faults.conftest import poll
from tests.support.netns import other_host_or_skip
from tests.support.servers import Server, valkey_binary
from tests.support.workers import WorkerProcess

# one unit for the whole job, so the other worker can only get it by taking it over
SETTINGS = {
    "SLUICE_PIPELINES": "tests.sample_pipelines",
    "SLUICE_UNIT_INPUTS": "1000",
    "SLUICE_POOL_SIZE": "1",
    "SLUICE_FETCH_CONCURRENCY": "2",
    "SLUICE_LEASE_S": "1",
}


async def test_a_partitioned_worker_does_not_undo_or_double_the_takeover(
    namespace: str, tmp_path: Path
) -> None:
    """Worker A, in a network namespace, runs a 300-input job; its link is cut; B takes the
    job over and completes it; the link heals: the job stays B's, with one record per input,
    A learns its lease is lost, and A goes on to run new work."""
    with other_host_or_skip("part") as host:
        server = Server(
            valkey_binary(),
            tmp_path / "valkey",
            extra_args=["--bind", "127.0.0.1", host.gateway, "--protected-mode", "no"],
        ).start()
        a = b = None
        try:
            url = server.url
            env = {**worker_env(url, namespace, tmp_path), **SETTINGS}
            a = WorkerProcess(
                env={
                    **env,
                    "SLUICE_REDIS_URL": f"redis://{host.gateway}:{server.port}",
                    "SLUICE_WORKER_NAME": "a",
                },
                log_path=tmp_path / "a.log",
                command=host.command([sys.executable, "-m", "worker"]),
            ).start()
            a.wait_ready(url, namespace)
            settings = ClientSettings(redis_url=url, namespace=namespace, _env_file=None)
            async with Client(settings) as client:
                inputs = [f"data:,{i}" for i in range(300)]
                job = await client.enqueue("test-sleep", inputs, options={"seconds": 0.02})

                async def under_way() -> bool:
                    return (await client.status(job)).stored >= 20

                await poll(under_way, 60)
                host.cut()
                b = WorkerProcess(
                    env={**env, "SLUICE_WORKER_NAME": "b"}, log_path=tmp_path / "b.log"
                ).start()

                async def taken_over() -> bool:
                    return (await client.status(job)).worker == "b"

                await poll(taken_over, 30)
                await asyncio.sleep(1.0)  # A runs on, cut off, past its lease
                host.heal()

                status = await client.wait(job, timeout_s=120)
                assert (status.state, status.stored, status.failed) == (JobState.COMPLETE, 300, 0)
                assert (status.worker, status.attempts) == ("b", 2)
                assert (status.fetched, status.transformed) == (300, 300)
                assert await client.redis.hlen(client.keys.results(job)) == 300

                async def noticed() -> bool:
                    return "lease lost" in a.log()

                await poll(noticed, 60)  # A's renewal got through once the link was back
                await asyncio.sleep(1.0)  # any late write of A's would land by now
                assert await client.status(job) == status
                # every record was stored once, by one of them: A's late counts did not land
                assert status.stages["store"].count <= 300
                assert a.process is not None and a.process.poll() is None

                b.stop()  # A alone: new work must be A's, over the healed link
                later = await client.enqueue("test-sleep", ["data:,later"])
                done = await client.wait(later, timeout_s=60)
                assert (done.state, done.worker) == (JobState.COMPLETE, "a")
        finally:
            for worker in (a, b):
                if worker is not None:
                    worker.stop()
            server.stop()
