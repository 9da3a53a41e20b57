"""What runs inside a pool process: load the pipelines once, then transform batches of inputs.

Only plain data crosses the process boundary (names, dicts, bytes); never a coroutine.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from worker.registry import REGISTRY, Output, load_modules

# (ok, result JSON or error message, binary output, its extension, seconds spent)
Outcome = tuple[bool, bytes | str, bytes | None, str | None, float]


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
