"""What runs inside a pool process: load the pipelines once, then transform batches of inputs.

Only plain data crosses the process boundary (names, dicts, bytes); never a coroutine.
"""

from __future__ import annotations

import mmap
import pickle
import signal
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

import orjson

from worker.registry import REGISTRY, Output, load_modules

# an input's bytes: sent as a PickleBuffer, received as a view of shared memory or as bytes
Payload = bytes | memoryview | pickle.PickleBuffer
# (ok, result JSON or error message, binary output, its extension, seconds spent)
Outcome = tuple[bool, bytes | str, bytes | None, str | None, float]


def serve(
    tasks: Connection,
    results: Connection,
    shared: Connection | None,
    initializer: Callable[..., None],
    initargs: Sequence[Any],
) -> None:
    """A pool process's life: run each task read from ``tasks``, answer on ``results``,
    until the pool closes ``tasks``. A task is a header naming the spans of its large
    buffers in the memory shared with the pool (``shared``: a memfd), then a pickled
    (function, args); the answer a pickled (True, value) or (False, exception)."""
    # the pool decides when its processes stop: a Ctrl-C or SIGTERM for the worker's process
    # group must not kill a transform halfway through a drain
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    memory = memoryview(mmap.mmap(shared.fileno(), 0)) if shared is not None else None
    initializer(*initargs)
    while True:
        try:
            frame = tasks.recv_bytes()
        except EOFError:
            return
        (count,) = struct.unpack_from("!I", frame)
        spans = struct.unpack_from(f"!{2 * count}Q", frame, 4)
        start = 4 + 16 * count
        buffers = [_view(memory, spans[i], spans[i + 1]) for i in range(0, 2 * count, 2)]
        try:
            fn, args = pickle.loads(frame[start:], buffers=buffers)
            answer = pickle.dumps((True, fn(*args)), 5)
        except Exception as exc:
            answer = _pickled_error(exc)
        results.send_bytes(answer)


def _view(memory: memoryview | None, start: int, length: int) -> memoryview:
    assert memory is not None, "a task names shared memory this process was not given"
    return memory[start : start + length]


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
    pipeline: str, options: Mapping[str, Any], payloads: Sequence[Payload]
) -> list[Outcome]:
    """Transform each payload with the named pipeline; one outcome per payload, in order."""
    transform = REGISTRY.pipelines[pipeline].transform
    # large payloads arrive as views of the memory shared with the pool, which is reused
    # once this call returns: the transform gets bytes of its own
    return [_run_one(transform, bytes(data), options) for data in payloads]


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
