"""The regular expressions of an options schema (``pattern``, ``patternProperties``), matched
in linear time, as the worker matches them.

`jsonschema` matches them with Python's ``re``, which backtracks: a pattern such as
``^(a+)+$`` and an option of 30 characters kept the producer's event loop busy for minutes
at enqueue, and whoever sends options (often a service's own users) chooses them. The worker
checks the same options with the pipeline's pydantic model, whose patterns run on Rust's
``regex`` crate (linear time, no backreferences or look-arounds); the producer matches them
with the same engine, through pydantic-core, so the two judge a value alike. A pattern that
engine cannot compile (a schema written by another tool) is not checked here: the worker
judges those options.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pydantic_core import SchemaError, SchemaValidator, core_schema

if TYPE_CHECKING:
    from jsonschema import ValidationError

Search = Callable[[str], bool]
# the keyword functions' ``validator`` is jsonschema's validator instance: its protocol
# (jsonschema.protocols.Validator) leaves out ``descend``, which they call


@functools.lru_cache(maxsize=256)
def searcher(pattern: str) -> Search | None:
    """Whether a string contains a match of ``pattern`` (JSON Schema's unanchored search);
    None if the linear-time engine cannot compile it."""
    try:
        compiled = SchemaValidator(core_schema.str_schema(pattern=pattern))
    except (SchemaError, TypeError, ValueError):
        return None
    return compiled.isinstance_python


def matches(pattern: object, text: str) -> bool | None:
    """Whether ``text`` matches ``pattern``; None when that cannot be told here."""
    search = searcher(pattern) if isinstance(pattern, str) else None
    return None if search is None else search(text)


def pattern(validator: Any, patrn: object, instance: object, schema: object) -> Iterator[Any]:
    if isinstance(instance, str) and matches(patrn, instance) is False:
        yield _error(f"{instance!r} does not match {patrn!r}")


def pattern_properties(
    validator: Any, patterns: object, instance: object, schema: object
) -> Iterator[Any]:
    if not isinstance(instance, Mapping) or not isinstance(patterns, Mapping):
        return
    for patrn, subschema in patterns.items():
        for key, value in instance.items():
            if matches(patrn, key):
                yield from validator.descend(value, subschema, path=key, schema_path=patrn)


def additional_properties(
    validator: Any, extra: object, instance: object, schema: Mapping[str, Any]
) -> Iterator[Any]:
    """As jsonschema's, with the names a ``patternProperties`` pattern covers found here (a
    pattern that cannot be told counts as covering the name: the worker judges it)."""
    if not isinstance(instance, Mapping):
        return
    known = schema.get("properties") or {}
    patterns = schema.get("patternProperties") or {}
    extras = sorted(
        key
        for key in instance
        if key not in known and not any(matches(p, key) is not False for p in patterns)
    )
    if isinstance(extra, Mapping):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)
    elif extra is False and extras:
        names = ", ".join(repr(key) for key in extras)
        if patterns:
            shown = ", ".join(repr(p) for p in sorted(patterns))
            verb = "does" if len(extras) == 1 else "do"
            yield _error(f"{names} {verb} not match any of the regexes: {shown}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield _error(f"Additional properties are not allowed ({names} {verb} unexpected)")


def _error(message: str) -> ValidationError:
    from jsonschema import ValidationError

    return ValidationError(message)
