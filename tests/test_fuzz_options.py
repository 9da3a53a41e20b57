"""Property-based tests of options: the check at enqueue (against the schemas workers publish)
and the worker's own check agree, and neither fails on anything but the options' fault."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producer import InvalidJob
from producer.client.options import PipelineRegistry
from producer.contract.wire import dumps
from tests.support.strategies import JSON_OBJECTS, TEXT, options_like, refusal
from worker.registry import REGISTRY, load_modules

load_modules([])
BUILT_IN = ["thumbnail", "text-stats"]
PUBLISHED = PipelineRegistry(
    {name.encode(): dumps(REGISTRY.pipelines[name].describe()) for name in BUILT_IN}
)
THUMBNAIL_OPTIONS = options_like(["width", "height", "format"])


def enqueue_refusal(pipeline: str, options: dict[str, Any]) -> str | None:
    """Why the check at enqueue refuses these options (InvalidJob is its only refusal)."""
    refused = refusal(lambda: PUBLISHED.check(pipeline, options), InvalidJob)
    assert refused is None or refused.startswith(f"invalid options for pipeline {pipeline!r}: ")
    return refused


def worker_refusal(pipeline: str, options: dict[str, Any]) -> str | None:
    """Why the worker's check refuses these options (ValueError is its only refusal)."""
    check = REGISTRY.pipelines[pipeline].check_options
    refused = refusal(lambda: check(options), ValueError)
    assert refused is None or refused.startswith(f"invalid options for pipeline {pipeline!r}: ")
    return refused


@pytest.mark.parametrize("pipeline", BUILT_IN)
@given(options=THUMBNAIL_OPTIONS | JSON_OBJECTS)
def test_options_enqueue_accepts_the_worker_accepts(pipeline: str, options: dict[str, Any]) -> None:
    """Options the check at enqueue lets through are never refused by the worker, so a job is
    not queued only to fail on its options."""
    if enqueue_refusal(pipeline, options) is None:
        assert worker_refusal(pipeline, options) is None, options


@given(
    width=st.integers(min_value=1, max_value=4096),
    height=st.integers(min_value=1, max_value=4096),
    format=st.sampled_from(["PNG", "png", "JPEG", "jpeg", "JPG", "jpg", "WEBP", "webp", "GIF"]),
)
def test_every_thumbnail_option_the_model_takes_passes_enqueue(
    width: int, height: int, format: str
) -> None:
    """The schema's enum and bounds are the model's: good options pass both checks."""
    options = {"width": width, "height": height, "format": format}
    assert enqueue_refusal("thumbnail", options) is None
    assert worker_refusal("thumbnail", options) is None


@given(st.dictionaries(st.binary(max_size=8), st.binary(max_size=60), max_size=4), JSON_OBJECTS)
def test_any_registry_hash_is_read_without_error(
    raw: dict[bytes, bytes], options: dict[str, Any]
) -> None:
    """Whatever the registry hash holds, checking a job against it refuses with InvalidJob
    or accepts; it never fails otherwise."""
    registry = PipelineRegistry(raw)
    for name in [*registry.names[:2], "text-stats"]:
        refusal(functools.partial(registry.check, name, options), InvalidJob)


@given(st.dictionaries(TEXT, JSON_OBJECTS | st.booleans() | TEXT, max_size=3), JSON_OBJECTS)
def test_any_published_schema_is_applied_without_error(
    schema: dict[str, Any], options: dict[str, Any]
) -> None:
    """Any object published as a schema, usable or not, checks options without failing."""
    registry = PipelineRegistry({b"p": dumps({"options": schema})})
    refused = refusal(lambda: registry.check("p", options), InvalidJob)
    assert refused is None or refused.startswith("invalid options for pipeline 'p': ")
