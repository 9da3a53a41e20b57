"""Checks a job must pass before it is enqueued, with messages that say what is wrong."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from producer.errors import InvalidJob
from producer.models import JobSpec
from producer.settings import ClientSettings

JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def check_job_id(job_id: str) -> str:
    if not JOB_ID_PATTERN.match(job_id):
        raise InvalidJob(
            f"invalid job id {job_id!r}: use 1-128 letters, digits, '_', '.', ':' or '-'"
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


def build_spec(pipeline: str, inputs: list[str] | None, options: Any) -> JobSpec:
    """A JobSpec, or InvalidJob listing every field that is wrong."""
    try:
        return JobSpec(pipeline=pipeline, inputs=inputs, options=options or {})
    except ValidationError as exc:
        raise InvalidJob(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "job"
        parts.append(f"{where}: {error['msg']}")
    return "invalid job: " + "; ".join(parts)
