"""Checking a job at enqueue against the pipeline registry the workers publish in
``{ns}:pipelines``: the pipeline must be registered, and its options must fit the JSON schema
of the pipeline's options model (what `worker.registry.Pipeline.describe` writes), so bad
options are refused before anything is queued. The worker checks them again with the model.

The schemas are pydantic's (JSON Schema 2020-12), checked with the `jsonschema` library,
imported on first use: a producer that never sends options to a pipeline with an options
model never loads it. Whatever the registry holds (a hash written by another tool, a schema
this library cannot use), a reader never fails on it: such a pipeline's options are left to
the worker.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from producer.client import schema_patterns
from producer.contract.errors import InvalidJob

if TYPE_CHECKING:
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

SHOWN_CHARS = 200  # of one problem: a value in a message may be as long as the options


class PipelineRegistry:
    """One read of ``{ns}:pipelines``: the registered pipelines and their options schemas."""

    def __init__(self, raw: Mapping[bytes, bytes]) -> None:
        self._described = {name.decode("utf-8", "replace"): value for name, value in raw.items()}
        self._validators: dict[str, Validator | None] = {}

    @property
    def names(self) -> list[str]:
        return sorted(self._described)

    def check(self, pipeline: str, options: Mapping[str, Any] | None) -> None:
        """InvalidJob if the pipeline is not registered (once any is) or its options do not fit
        its schema; with no worker registered yet, nothing is checked."""
        if not self._described:
            return
        if pipeline not in self._described:
            raise InvalidJob(f"unknown pipeline {pipeline!r}; registered: {', '.join(self.names)}")
        validator = self._validator(pipeline)
        if validator is None:
            return
        problems = describe_problems(validator, options or {})
        if problems:
            raise InvalidJob(f"invalid options for pipeline {pipeline!r}: {'; '.join(problems)}")

    def _validator(self, pipeline: str) -> Validator | None:
        """The pipeline's compiled schema; None when it has none (any options go) or the
        registry's entry cannot be used."""
        if pipeline not in self._validators:
            self._validators[pipeline] = _compile(self._described[pipeline])
        return self._validators[pipeline]


def _compile(described: bytes) -> Validator | None:
    try:
        entry = orjson.loads(described)
    except ValueError:
        return None
    schema = entry.get("options") if isinstance(entry, dict) else None
    if not isinstance(schema, dict) or not schema:
        return None
    from jsonschema.exceptions import SchemaError
    from referencing import Registry

    validator = _validator_class()
    try:
        validator.check_schema(schema)
    except SchemaError:
        return None
    # an empty registry: jsonschema's default fetches a remote $ref with urlopen, and a
    # schema read from Redis must never make the producer fetch a URL
    return validator(schema, registry=Registry())


@functools.cache
def _validator_class() -> type[Validator]:
    """JSON Schema 2020-12, except that an "integer" is an int (JSON Schema counts 1.0 as
    one, a strict pydantic model does not, and a job must not be queued only for the worker
    to refuse its options) and its regular expressions match in linear time
    (`producer.client.schema_patterns`)."""
    from jsonschema import Draft202012Validator, validators

    def is_integer(checker: object, instance: object) -> bool:
        return isinstance(instance, int) and not isinstance(instance, bool)

    types = Draft202012Validator.TYPE_CHECKER.redefine("integer", is_integer)
    # types-jsonschema leaves extend() unannotated; it returns a validator class
    extend: Any = validators.extend
    # the schema's regular expressions run in linear time, as the worker's model runs them
    keywords = {
        "pattern": schema_patterns.pattern,
        "patternProperties": schema_patterns.pattern_properties,
        "additionalProperties": schema_patterns.additional_properties,
    }
    extended: type[Validator] = extend(Draft202012Validator, keywords, type_checker=types)
    return extended


def describe_problems(validator: Validator, options: Mapping[str, Any]) -> list[str]:
    """Each way ``options`` does not fit the schema, as ``where: what``, in the order of the
    options they name; [] if it fits or the schema cannot be applied (a reference this
    library cannot resolve, say)."""
    schema = validator.schema if isinstance(validator.schema, Mapping) else {}
    try:
        problems = [
            p for error in validator.iter_errors(options) for p in _problems(schema, options, error)
        ]
    except Exception:  # the worker will judge these options with the model itself
        return []
    return [f"{_clip(where)}: {_clip(what)}" for where, what in sorted(problems)]


def _problems(
    schema: Mapping[str, Any], options: Mapping[str, Any], error: ValidationError
) -> list[tuple[str, str]]:
    if error.validator == "additionalProperties" and not error.path:
        known = schema.get("properties") or {}
        unknown = [key for key in options if key not in known]
        if unknown and not schema.get("patternProperties"):
            names = ", ".join(sorted(known)) or "none"
            return [(key, f"unknown option (known: {names})") for key in unknown]
    return [(".".join(str(part) for part in error.path) or "options", error.message)]


def _clip(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}…"
