"""The Celery peer's app and its one task: fetch, transform, store — as Celery users write it.

Runs in the Celery venv (``make bench`` creates it: celery[redis] and urllib3), which has
neither arq nor the worker package: this module needs only celery, redis, urllib3 and
``benchmarks.transforms``. The broker is ``BENCH_REDIS_URL``; no result backend (the task
stores its own record, like every other system).
"""

from __future__ import annotations

import json
import os
from typing import Any

import redis
import urllib3  # type: ignore[import-not-found,unused-ignore]
from celery import Celery  # type: ignore[import-not-found,unused-ignore]

from benchmarks.transforms import TRANSFORMS, decode_data_uri

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("bench", broker=REDIS_URL)
app.conf.update(
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    task_ignore_result=True,
)

_clients: dict[str, Any] = {}  # per (prefork) process, made on first use


def _client(name: str) -> Any:
    if name not in _clients:
        if name == "http":
            _clients[name] = urllib3.PoolManager(maxsize=4, retries=False)
        else:
            _clients[name] = redis.Redis.from_url(REDIS_URL)
    return _clients[name]


def _fetch(uri: str) -> bytes:
    if uri.startswith("data:"):
        return decode_data_uri(uri)
    response = _client("http").request("GET", uri, timeout=30.0)
    if response.status != 200:
        raise OSError(f"HTTP {response.status} for {uri}")
    return bytes(response.data)


def run(results_key: str, transform: str, index: int, uri: str) -> None:
    """Fetch, transform and store one input."""
    record: dict[str, Any] = {"index": index, "input": uri}
    try:
        record["result"] = TRANSFORMS[transform](_fetch(uri), {})
        record["ok"] = True
    except Exception as exc:
        record.update(ok=False, error=f"{type(exc).__name__}: {exc}")
    _client("redis").hset(results_key, str(index), json.dumps(record, separators=(",", ":")))


process = app.task(name="bench.process")(run)
