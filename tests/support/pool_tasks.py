"""Plain functions for the process pool's tests to run in its processes (importable there)."""

from __future__ import annotations

import os
import time


def pid() -> int:
    return os.getpid()


def echo(value: object) -> object:
    return value


def crash(code: int) -> None:
    os._exit(code)


def sleep_then_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


class Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:  # pickling passes only one argument back
        super().__init__(f"{a}/{b}")


def raise_value_error(message: str) -> None:
    raise ValueError(message)


def raise_unpicklable() -> None:
    raise Unpicklable(1, 2)


def slow_start(seconds: float) -> None:
    """An initializer that takes its time, as imports do on a loaded machine."""
    time.sleep(seconds)


def nothing() -> None:
    return None


def digest(*buffers: object) -> str:
    """SHA-256 of the buffers, in order (they may arrive as views of shared memory)."""
    import hashlib

    h = hashlib.sha256()
    for buffer in buffers:
        h.update(bytes(buffer))  # type: ignore[call-overload]
    return h.hexdigest()
