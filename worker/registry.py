"""Registries of pipelines (name -> transform) and fetchers (URI scheme -> fetcher).

Only what is registered here can run: a job names a pipeline, never an importable path.
User modules named in ``SLUICE_PIPELINES`` register theirs on import::

    from worker import pipeline

    @pipeline("word-count")
    def word_count(data: bytes, options: dict[str, Any]) -> dict[str, Any]:
        return {"words": len(data.split())}
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from producer.contract.errors import ConfigError, described
from producer.contract.models import PIPELINE_NAME_PATTERN
from worker.errors import described as error_text
from worker.settings import WorkerConfig


@dataclass(frozen=True, slots=True)
class Output:
    """A transform's result with a binary output beside it (stored apart, e.g. an image)."""

    result: dict[str, Any]
    blob: bytes
    extension: str  # file extension for `sluice results --output`, e.g. "png"


Transform = Callable[[bytes, Mapping[str, Any]], "dict[str, Any] | Output"]


class Fetcher(Protocol):
    """Fetches the bytes behind one URI; raises FetchError with a clear message on failure."""

    async def fetch(self, uri: str, max_bytes: int) -> bytes: ...

    async def close(self) -> None: ...


FetcherFactory = Callable[[WorkerConfig], Fetcher]  # called at start-up


@dataclass(frozen=True, slots=True)
class Pipeline:
    name: str
    transform: Transform
    options: type[BaseModel] | None = None
    description: str = ""

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validated options (with defaults filled in), or ValueError saying what is wrong."""
        if self.options is None:
            return dict(options)
        try:
            return self.options.model_validate(options).model_dump()
        except ValidationError as exc:
            problems = described(exc, "options")
            raise ValueError(f"invalid options for pipeline {self.name!r}: {problems}") from None

    def describe(self) -> dict[str, Any]:
        schema = self.options.model_json_schema() if self.options else {}
        return {"description": self.description, "options": schema}


@dataclass
class Registry:
    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    fetchers: dict[str, FetcherFactory] = field(default_factory=dict)


REGISTRY = Registry()
F = TypeVar("F", bound=Transform)


def pipeline(name: str, *, options: type[BaseModel] | None = None) -> Callable[[F], F]:
    """Register a module-level sync function as the transform of pipeline ``name``."""
    import re

    if not re.match(PIPELINE_NAME_PATTERN, name):
        raise ValueError(f"invalid pipeline name {name!r}: use lower-case letters, digits, . _ -")

    def register(fn: F) -> F:
        doc = (fn.__doc__ or "").strip().splitlines()
        REGISTRY.pipelines[name] = Pipeline(name, fn, options, doc[0] if doc else "")
        return fn

    return register


def fetcher(*schemes: str) -> Callable[[FetcherFactory], FetcherFactory]:
    """Register a fetcher factory for URI schemes (e.g. ``@fetcher("s3")``)."""

    def register(factory: FetcherFactory) -> FetcherFactory:
        for scheme in schemes:
            REGISTRY.fetchers[scheme.lower()] = factory
        return factory

    return register


def load_modules(names: Iterable[str]) -> None:
    """Import the built-in pipelines and fetchers, then the user's modules."""
    for name in ("worker.pipelines", "worker.fetchers", *names):
        import_named(name, "SLUICE_PIPELINES")


def import_named(name: str, setting: str) -> ModuleType:
    """The module a setting names, or ConfigError naming the setting and what its import
    raised (any exception: a module that fails as it runs, or raises what cannot be printed,
    stops start-up with that message, not a traceback)."""
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise ConfigError(
            f"invalid setting {setting}: cannot import {name!r}: {error_text(exc)}"
        ) from None


def check_rated_pipelines(config: WorkerConfig) -> None:
    """Every pipeline SLUICE_PIPELINE_RATES limits is registered (a misspelt name would limit
    nothing), or ConfigError naming the setting; run once the modules are loaded."""
    for rule in config.rate_rules:
        if rule.kind == "pipeline" and rule.name not in REGISTRY.pipelines:
            known = ", ".join(sorted(REGISTRY.pipelines))
            raise ConfigError(
                f"invalid setting SLUICE_PIPELINE_RATES: no pipeline {rule.name!r} is "
                f"registered (registered: {known}; SLUICE_PIPELINES names modules with more)"
            )
