"""What runs inside a pool process: load the pipelines once, then transform batches of inputs.

Only plain data crosses the process boundary (names, dicts, bytes); never a coroutine.
"""

from __future__ import annotations

import pickle
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, cast

import orjson

from worker.errors import (
    ItemError,
    JobFailed,
    TransformError,
    described,
    message_of,
    reason_of,
)
from worker.pool.finite import non_finite
from worker.registry import REGISTRY, Output, load_modules

# an input's bytes: sent as a PickleBuffer, received as a view of shared memory or as bytes
Payload = bytes | memoryview | pickle.PickleBuffer
# a file extension that is one safe path component (`sluice results --output` writes it)
EXTENSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,15}$")


class Outcome(NamedTuple):
    """One input's transform, as it crosses back from the pool: only plain values, built
    here, so whatever the transform raised or returned, the answer can be pickled."""

    ok: bool
    value: bytes | str  # the result as JSON, or the error message
    blob: bytes | None
    extension: str | None
    elapsed_s: float
    job_failed: bool = False  # the transform raised JobFailed: the whole job is to fail


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
    """Run the transform on one input; whatever it raises or returns, an `Outcome`."""
    start = time.perf_counter()
    try:
        returned = transform(data, options)
    except JobFailed as exc:
        return Outcome(False, reason_of(exc), None, None, _since(start), job_failed=True)
    except ItemError as exc:  # the author's own message for this input
        return Outcome(False, reason_of(exc), None, None, _since(start))
    except BaseException as exc:  # SIGINT is ignored here: sys.exit() or a raise is a bug
        return Outcome(False, described(exc), None, None, _since(start))
    try:
        encoded, blob, extension = _checked(returned)
    except TransformError as exc:
        return Outcome(False, message_of(exc), None, None, _since(start))
    except Exception as exc:  # e.g. a value whose __class__ raises
        message = f"transform returned something unusable: {described(exc)}"
        return Outcome(False, message, None, None, _since(start))
    return Outcome(True, encoded, blob, extension, _since(start))


def _checked(returned: object) -> tuple[bytes, bytes | None, str | None]:
    """What a transform returned, as plain values to store: the result's JSON, and the binary
    output and its extension; TransformError saying what is wrong with it. Types are read
    with type(), never isinstance(), which asks the object itself."""
    if not issubclass(type(returned), Output):
        value, blob, extension = returned, None, None
        _check_result(value, "transform returned {}, expected a dict or an Output")
    else:
        output = cast(Output, returned)
        value, blob, extension = output.result, output.blob, output.extension
        _check_result(value, "Output.result must be a dict, got {}")
        if not issubclass(type(blob), bytes | bytearray | memoryview):
            raise TransformError(f"Output.blob must be bytes, got {type(blob).__name__}")
        blob = bytes(memoryview(blob))  # a plain bytes, whatever the buffer was
        if type(extension) is not str or not EXTENSION.match(extension):
            raise TransformError(
                "Output.extension must be a file extension such as 'png' (1-16 letters, "
                f"digits, '.', '_' or '-', first a letter or digit), got {extension!r}"
            )
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise TransformError(f"result is not JSON-serialisable: {message_of(exc)}") from None
    if b"null" in encoded:  # NaN and ±Infinity were written as null: say so, never store it
        where = non_finite(value)
        if where is not None:
            raise TransformError(f"result is not JSON-serialisable: {where}, not a JSON number")
    return encoded, blob, extension


def _check_result(value: object, message: str) -> None:
    if not issubclass(type(value), dict):
        raise TransformError(message.format(type(value).__name__))


def _since(start: float) -> float:
    return time.perf_counter() - start
