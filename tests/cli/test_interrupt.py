"""Ctrl-C while `sluice enqueue --from-file -` waits on a pipe: it stops at once, exit 130,
and leaves nothing enqueued, not even the inputs it had already streamed to Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from producer.contract.keys import Keys
from producer.redis.typed import SyncRedis
from tests.conftest import ROOT


def test_sigint_while_reading_a_pipe_exits_130_leaving_nothing(
    env: dict[str, str], rdb: SyncRedis, keys: Keys, job_id: str
) -> None:
    """SIGINT once the first thousand inputs are in Redis and the reader is blocked on a pipe
    that stays open: the process ends without the read ever returning, with 130."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    child_env.update(env, PYTHONPATH=str(ROOT))
    args = ["enqueue", "text-stats", "--from-file", "-", "--job-id", job_id]
    read_end, write_end = os.pipe()
    try:
        with subprocess.Popen(
            [sys.executable, "-m", "producer", *args],
            stdin=read_end,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env,
        ) as process:
            os.close(read_end)
            os.write(write_end, b"".join(b"data:,%d\n" % i for i in range(1500)))
            deadline = time.monotonic() + 30
            while rdb.llen(keys.inputs(job_id)) < 1000:  # streaming, the rest of the pipe open
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            # the pipe stays open: a process waiting for the read to end would never exit
            code = process.wait(timeout=20)
            errors = process.stderr.read().decode() if process.stderr else ""
    finally:
        os.close(write_end)
    assert code == 130, errors
    assert "interrupted" in errors and "Traceback" not in errors
    assert rdb.exists(keys.inputs(job_id), keys.job(job_id), Keys().arq_job(job_id)) == 0
    assert rdb.zcard(keys.queue) == 0
