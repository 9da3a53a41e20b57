"""What every process of `worker.pool.process_pool` runs: read a task, run it, answer, until
the pool closes its task pipe. Generic: it knows nothing of Sluice; the functions it runs are
whatever the pool was given.
"""

from __future__ import annotations

import mmap
import pickle
import signal
import struct
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any


def serve(
    tasks: Connection,
    results: Connection,
    shared: Connection | None,
    initializer: Callable[..., None],
    initargs: Sequence[Any],
) -> None:
    """A pool process's life: run each task read from ``tasks``, answer on ``results``,
    until the pool closes ``tasks``. The first answer, empty, says the process is ready. A
    task is a header naming the spans of its large buffers in the memory shared with the pool
    (``shared``: a memfd), then a pickled (function, args); the answer a pickled (True, value)
    or (False, exception)."""
    # the pool decides when its processes stop: a Ctrl-C or SIGTERM for the worker's process
    # group must not kill a transform halfway through a drain
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    memory = memoryview(mmap.mmap(shared.fileno(), 0)) if shared is not None else None
    initializer(*initargs)
    results.send_bytes(b"")  # ready: the pool starts a task's clock from here, not from fork
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
        return pickle.dumps((False, RuntimeError(_described(exc))), 5)


def _described(exc: Exception) -> str:
    """``Type: message``, or the type alone when its message cannot be made."""
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:
        return type(exc).__name__
