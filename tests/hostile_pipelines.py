"""A pipeline and a fetcher that misbehave on purpose, in every way one input can: the tests
load them into real workers with SLUICE_PIPELINES=tests.hostile_pipelines.

The input's bytes (or the URI's text after ``hostile:``) name the misbehaviour, e.g.
``data:,unprintable`` raises an exception whose message cannot be produced. Anything else
transforms (or fetches) normally.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from typing import Any

from worker import FetchError, ItemError, JobFailed, Output, TransformError, fetcher, pipeline


class UnprintableError(Exception):
    """Neither str() nor repr() of it works."""

    def __str__(self) -> str:
        raise RuntimeError("no message for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


class WorseError(Exception):
    """Its str() raises an exception that cannot be shown either."""

    def __str__(self) -> str:
        raise UnprintableError()


class LockedError(Exception):
    """Carries an argument that cannot be pickled, so it cannot cross from the pool as is."""

    def __init__(self) -> None:
        super().__init__("holds a lock", threading.Lock())


def _local_str_error() -> Exception:
    class Local(str):  # a class no other process can import
        pass

    class LocalError(Exception):
        def __str__(self) -> str:
            return Local("a message of a local str class")

    return LocalError()


def _recursive() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


def _deep() -> dict[str, Any]:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    return {"deep": deep}


class ShapeShifter:
    """Raises when asked for its class (as isinstance() does)."""

    def __getattribute__(self, name: str) -> object:
        raise RuntimeError(f"no {name}")


RAISES: dict[str, Callable[[], BaseException]] = {
    "unprintable": UnprintableError,
    "worse": WorseError,
    "locked": LockedError,
    "local-str": _local_str_error,
    "surrogate": lambda: ValueError("bad byte \udcff here"),
    "long": lambda: ValueError("x" * 1_000_000),
    "exit": lambda: SystemExit(4),
    "interrupt": KeyboardInterrupt,
    "item-error": lambda: ItemError("the page is a login form"),
    "bare-item-error": TransformError,
    "transform-error": lambda: TransformError("no faces found"),
    "fetch-error": lambda: FetchError("stale link"),
    "job-failed": lambda: JobFailed("the licence for this job has expired"),
}

RETURNS: dict[str, Callable[[], Any]] = {
    "none": lambda: None,
    "list": lambda: [1, 2],
    "lock": lambda: {"lock": threading.Lock()},
    "set": lambda: {"tags": {"a"}},
    "int-keys": lambda: {1: "one"},
    "big-int": lambda: {"n": 2**70},
    "nan": lambda: {"scores": [1.0, None, float("nan")]},
    "infinity": lambda: {"stats": {"ok": None, "mean": -float("inf")}},
    "recursive": _recursive,
    "deep": _deep,
    "huge": lambda: {"text": "x" * 2_000_000},
    "shape-shifter": ShapeShifter,
    "output-types": lambda: Output(result=["x"], blob="text", extension=7),  # type: ignore[arg-type]
    "output-blob": lambda: Output(result={}, blob=threading.Lock(), extension="bin"),  # type: ignore[arg-type]
    "output-extension": lambda: Output(result={}, blob=b"x", extension="../../etc/passwd"),
    "bytearray-blob": lambda: Output(result={"ok": 1}, blob=bytearray(b"yes"), extension="bin"),  # type: ignore[arg-type]
}


@pipeline("test-hostile")
def hostile(data: bytes, options: Mapping[str, Any]) -> dict[str, Any] | Output:
    """Misbehaves as its input says; echoes the input otherwise."""
    word = data.decode(errors="replace")
    if word in RAISES:
        raise RAISES[word]()
    if word in RETURNS:
        return RETURNS[word]()  # type: ignore[no-any-return]
    return {"echo": word}


class HostileFetcher:
    """``hostile:WORD`` misbehaves as WORD says; fetches WORD itself otherwise."""

    async def fetch(self, uri: str, max_bytes: int) -> bytes:
        word = uri.partition(":")[2]
        if word in RAISES:
            raise RAISES[word]()
        if word == "cancelled":
            raise asyncio.CancelledError()
        answers: dict[str, Any] = {
            "text": "a str, not bytes",
            "none": None,
            "number": 42,
            "bytearray": bytearray(b"bytearray"),
            "memoryview": memoryview(b"memoryview"),
            "too-big": b"x" * (max_bytes + 1),
        }
        return answers.get(word, word.encode())  # type: ignore[no-any-return]

    async def close(self) -> None:
        return None


@fetcher("hostile")
def hostile_fetcher(config: object) -> HostileFetcher:
    return HostileFetcher()
