"""Checks a job must pass before it is enqueued, with messages that say what is wrong."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from producer.contract.errors import InvalidJob, described
from producer.contract.models import JobSpec
from producer.contract.settings import ClientSettings, is_utf8

# No ':' (an id must never name another job's key: `{ns}:job:X:results` is job X's results,
# not job "X:results"'s status), nor '/', '#', '{', '}', spaces or controls (ids sit in URL
# paths and log lines); not starting with '.' (no "." or ".." path segments).
JOB_ID_GRAMMAR = r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}"
JOB_ID_PATTERN = re.compile(rf"^{JOB_ID_GRAMMAR}$")
_JOB_ID = re.compile(JOB_ID_GRAMMAR)  # used with fullmatch: '$' also matches before a "\n"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_SHOWN_CHARS = 80
# JSON nesting options may use: the encoder stops at 254 levels, and the envelope adds its own
MAX_OPTIONS_DEPTH = 200
_JSON_INTEGERS = range(-(2**63), 2**64)  # what the encoder writes as an integer


def check_job_id(job_id: object) -> str:
    """The job id, or InvalidJob stating the grammar ids follow."""
    if not isinstance(job_id, str):
        raise InvalidJob(f"invalid job id: must be a string, got {type(job_id).__name__}")
    if not _JOB_ID.fullmatch(job_id):
        shown = job_id if len(job_id) <= _SHOWN_CHARS else f"{job_id[:_SHOWN_CHARS]}…"
        raise InvalidJob(
            f"invalid job id {shown!r}: use 1-128 letters, digits, '_', '-' or '.', not "
            f"starting with '.' (the pattern {JOB_ID_PATTERN.pattern}; no ':', '/' or spaces)"
        )
    return job_id


def check_input(index: int, value: object, settings: ClientSettings) -> str:
    """One input URI, or InvalidJob naming the input and what is wrong with it."""
    if not isinstance(value, str):
        raise InvalidJob(f"input {index}: must be a string URI, got {type(value).__name__}")
    if not value:
        raise InvalidJob(f"input {index}: is empty")
    if len(value) > settings.max_input_chars:
        raise InvalidJob(
            f"input {index}: is {len(value)} characters, over the limit of "
            f"{settings.max_input_chars} (SLUICE_MAX_INPUT_CHARS)"
        )
    if not value.isascii() and not is_utf8(value):
        raise InvalidJob(f"input {index}: is not valid text (it holds a lone surrogate)")
    if not _SCHEME.match(value):
        raise InvalidJob(
            f"input {index}: {value[:80]!r} has no URI scheme (expected e.g. https://, "
            "file:// or data:)"
        )
    return value


def check_count(count: int, settings: ClientSettings) -> None:
    if count > settings.max_inputs_per_job:
        raise InvalidJob(
            f"too many inputs: more than {settings.max_inputs_per_job} (SLUICE_MAX_INPUTS_PER_JOB)"
        )


def check_payload_size(size: int, settings: ClientSettings) -> None:
    if size > settings.max_payload_bytes:
        raise InvalidJob(
            f"job payload is {size} bytes, over the limit of {settings.max_payload_bytes} "
            "(SLUICE_MAX_PAYLOAD_BYTES); send fewer inputs or smaller options"
        )


# The furthest ahead a job may be deferred: a year. Further is surely a mistake (a timestamp
# given as a delay), and the job's queue score and expiry must stay finite integers.
MAX_DEFER_S = 365 * 86400


def check_defer(defer_s: float) -> float:
    """``defer_s`` if it is a number of seconds from 0 to MAX_DEFER_S, else InvalidJob."""
    number = isinstance(defer_s, int | float) and not isinstance(defer_s, bool)
    if not number or not 0 <= defer_s <= MAX_DEFER_S:  # NaN fails the comparison too
        raise InvalidJob(
            f"defer_s must be from 0 to {MAX_DEFER_S} seconds (a year, MAX_DEFER_S), "
            f"got {defer_s!r}"
        )
    return defer_s


def build_spec(
    pipeline: str, inputs: list[str] | None, options: Any, choices: Mapping[str, Any] | None = None
) -> JobSpec:
    """A JobSpec, or InvalidJob listing every field that is wrong. ``choices``: the queue,
    priority and per-job overrides the enqueue chose (JobSpec's fields of those names)."""
    try:
        spec = JobSpec(pipeline=pipeline, inputs=inputs, options=options or {}, **(choices or {}))
    except ValidationError as exc:
        raise InvalidJob(describe(exc)) from None
    check_json(spec.options, "options")
    return spec


def check_json(value: object, where: str) -> None:
    """InvalidJob naming the first part of ``value`` that JSON cannot carry as it is (NaN,
    bytes, a set, a lone surrogate in a value or a key, an integer past 64 bits, a key that is
    not text, too deep): the worker must get exactly the options that were given, never an
    encoder's guess."""
    stack: list[tuple[str, object, int]] = [(where, value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if depth > MAX_OPTIONS_DEPTH:
            raise InvalidJob(f"{path}: nested deeper than {MAX_OPTIONS_DEPTH} levels")
        problem = _json_problem(item)
        if problem is not None:
            shown = path if len(path) <= _SHOWN_CHARS else f"{path[:_SHOWN_CHARS]}…"
            raise InvalidJob(f"{shown}: {problem}")
        if isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    raise InvalidJob(f"{path}: key {key!r} is not text")
                if not key.isascii() and not is_utf8(key):
                    raise InvalidJob(f"{path}: key {key!r} is text with a lone surrogate")
                stack.append((f"{path}.{key}", inner, depth + 1))
        elif isinstance(item, list | tuple):
            stack += [(f"{path}[{i}]", inner, depth + 1) for i, inner in enumerate(item)]


def _json_problem(item: object) -> str | None:
    """Why ``item`` itself (not what it holds) is not a JSON value, or None."""
    if item is None or isinstance(item, bool | dict | list | tuple):
        return None
    if isinstance(item, str):
        return None if item.isascii() or is_utf8(item) else "text with a lone surrogate"
    if isinstance(item, int):
        return None if item in _JSON_INTEGERS else f"{item} is past 64 bits"
    if isinstance(item, float):
        return None if math.isfinite(item) else f"{item} is not a JSON number"
    return f"{type(item).__name__} is not a JSON value"


def describe(exc: ValidationError) -> str:
    """A job that is not a valid JobSpec, in words: every field that is wrong."""
    return "invalid job: " + described(exc, "job")
