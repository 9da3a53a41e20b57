"""Hypothesis strategies for Sluice's data: JSON values as the wire carries them, values that
JSON cannot carry, URIs, job ids, and option dicts shaped like a pipeline's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from producer.contract.validation import JOB_ID_GRAMMAR

# text JSON can carry: no lone surrogates
TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
# integers orjson reads and writes as integers (it reads larger ones as floats)
INTEGERS = st.integers(min_value=-(2**63), max_value=2**64 - 1)
SCALARS = (
    st.none() | st.booleans() | INTEGERS | st.floats(allow_nan=False, allow_infinity=False) | TEXT
)
JSON: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=5),
    max_leaves=20,
)
JSON_OBJECTS = st.dictionaries(TEXT, JSON, max_size=6)

# what JSON cannot carry, as a careless producer might pass it in options or inputs
SURROGATES = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1)
UNENCODABLE = (
    SURROGATES
    | st.integers(min_value=2**64, max_value=2**80)
    | st.integers(max_value=-(2**63) - 1, min_value=-(2**80))
    | st.sets(st.integers(), max_size=2)
    | st.binary(max_size=4)
    | st.builds(object)
)
HOSTILE: st.SearchStrategy[Any] = st.recursive(
    SCALARS | UNENCODABLE | st.floats(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(TEXT | SURROGATES, inner, max_size=4)
    ),
    max_leaves=12,
)

JOB_IDS = st.from_regex(JOB_ID_GRAMMAR, fullmatch=True)
PIPELINE_NAMES = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True)
URIS = st.builds(
    lambda scheme, rest: f"{scheme}:{rest}",
    st.from_regex(r"[A-Za-z][A-Za-z0-9+.-]{0,10}", fullmatch=True),
    st.text(st.characters(codec="utf-8"), max_size=60),
)

# URIs that look right but hold a lone surrogate (bytes decoded with surrogateescape, say)
BAD_TEXT_URIS = st.builds(lambda uri, bad: uri + bad, URIS, SURROGATES)


def options_like(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Option dicts that use these names (and some others) with values near what they take."""
    keys = st.sampled_from([*names, *(n[::-1] for n in names), "extra"]) | TEXT
    near = (
        st.integers(min_value=-5, max_value=5000)
        | st.integers(min_value=-5, max_value=5000).map(float)  # 256.0: an integer to JSON
        | st.floats(min_value=-5, max_value=5000)
        | st.sampled_from(["PNG", "png", "Png", "jpg", "JPEG", "jpeg", "TIFF", " png ", ""])
        | st.booleans()
        | st.none()
        | st.lists(st.integers(), max_size=2)
        | st.sampled_from(["100", "1e3", "nan"])
    )
    only_known = st.fixed_dictionaries({}, optional=dict.fromkeys(names, near))
    return only_known | st.dictionaries(keys, near, max_size=4)


def refusal(call: Callable[[], object], *refusals: type[Exception]) -> str | None:
    """The message of the refusal ``call()`` raised (one of ``refusals``), or None if it
    raised nothing; any other exception propagates and fails the test."""
    try:
        call()
    except refusals as exc:
        return str(exc)
    return None
