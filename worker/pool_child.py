"""What runs inside a pool process: load the pipelines once, then transform batches of inputs.

Only plain data crosses the process boundary (names, dicts, bytes); never a coroutine.
"""

from __future__ import annotations

import pickle
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

import orjson

from worker.registry import REGISTRY, Output, load_modules

# (ok, result JSON or error message, binary output, its extension, seconds spent)
Outcome = tuple[bool, bytes | str, bytes | None, str | None, float]


def serve(
    tasks: Connection,
    results: Connection,
    initializer: Callable[..., None],
    initargs: Sequence[Any],
) -> None:
    """A pool process's life: run each task read from ``tasks``, answer on ``results``,
    until the pool closes ``tasks``. A task is a pickled (function, args); the answer a
    pickled (True, value) or (False, exception)."""
    # the pool decides when its processes stop: a Ctrl-C or SIGTERM for the worker's process
    # group must not kill a transform halfway through a drain
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    initializer(*initargs)
    while True:
        try:
            fn, args = pickle.loads(tasks.recv_bytes())
        except EOFError:
            return
        try:
            answer = pickle.dumps((True, fn(*args)), 5)
        except Exception as exc:
            answer = _pickled_error(exc)
        results.send_bytes(answer)


def _pickled_error(exc: Exception) -> bytes:
    try:
        data = pickle.dumps((False, exc), 5)
        pickle.loads(data)  # many exception classes pickle but cannot be rebuilt
        return data
    except Exception:  # keep its type and message
        return pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")), 5)


def init(modules: Sequence[str]) -> None:
    """Pool initializer: register the same pipelines as the parent process."""
    load_modules(modules)


def run_batch(
    pipeline: str, options: Mapping[str, Any], payloads: Sequence[bytes]
) -> list[Outcome]:
    """Transform each payload with the named pipeline; one outcome per payload, in order."""
    transform = REGISTRY.pipelines[pipeline].transform
    return [_run_one(transform, data, options) for data in payloads]


def _run_one(transform: Any, data: bytes, options: Mapping[str, Any]) -> Outcome:
    start = time.perf_counter()
    try:
        returned = transform(data, options)
        value, blob, ext = returned, None, None
        if isinstance(returned, Output):
            value, blob, ext = returned.result, returned.blob, returned.extension
        if not isinstance(value, dict):
            raise TypeError(f"transform returned {type(value).__name__}, expected a dict")
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        return False, f"result is not JSON-serialisable: {exc}", None, None, _since(start)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}", None, None, _since(start)
    return True, encoded, blob, ext, _since(start)


def _since(start: float) -> float:
    return time.perf_counter() - start
