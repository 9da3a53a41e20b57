"""A job that waited mostly for its rate limits, and a worker applying them, written into the
status hash and the heartbeat by hand: what the CLI and the dashboard show of rate limits."""

from __future__ import annotations

from producer.contract.keys import Keys
from producer.contract.wire import now_ms

RATES = ["host api.example.com 5/s burst 10", "pipeline thumbnail 2/s"]
STATUS = {
    "state": "complete",
    "pipeline": "text-stats",
    "total": "40",
    "fetched": "40",
    "transformed": "40",
    "stored": "40",
    "failed": "0",
    "fetch_count": "40",
    "fetch_s": "0.4",
    "fetch_slot_s": "32",
    "transform_count": "40",
    "transform_s": "0.2",
    "transform_slot_s": "8",
    "store_count": "40",
    "store_s": "0.1",
    "store_slot_s": "8",
    "rate_wait_count": "39",
    "rate_wait_s": "20.5",
}


def rate_limited_job(keys: Keys, job_id: str) -> dict[str, dict[str, str]]:
    """The hashes to write (key -> fields): the job's status and a live worker's heartbeat."""
    worker = {"id": "w-rates", "host": "h", "pid": "7", "rates": ",".join(RATES)}
    return {keys.job(job_id): STATUS, keys.worker("w-rates"): worker}


def register_worker(keys: Keys) -> tuple[str, dict[str, int]]:
    """The workers set entry (key, {id: beat}) of the worker above."""
    return keys.workers, {"w-rates": now_ms()}
