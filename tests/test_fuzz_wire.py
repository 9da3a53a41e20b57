"""Property-based tests of the wire format, the job envelope, job ids and inputs: what any
producer may write, and what the worker and readers must survive."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producer import ClientSettings, InvalidJob, JobSpec
from producer.contract.envelope import MALFORMED, load_envelope
from producer.contract.keys import JOB_FUNCTION, Keys, unit_member
from producer.contract.validation import JOB_ID_GRAMMAR, build_spec, check_input, check_job_id
from producer.contract.wire import dumps, encode_job, loads, status_from_hash
from tests.support.strategies import (
    BAD_TEXT_URIS,
    HOSTILE,
    INTEGERS,
    JOB_IDS,
    JSON,
    JSON_OBJECTS,
    PIPELINE_NAMES,
    TEXT,
    URIS,
    refusal,
)

SETTINGS = ClientSettings(redis_url="redis://127.0.0.1:1", _env_file=None)
ENVELOPE_FIELDS = {"f": str, "a": list, "k": dict, "t": int, "et": int}


def assert_envelope_shape(envelope: dict[str, Any]) -> None:
    """What the worker reads from an envelope has the type it expects, whatever was written."""
    for name, kind in ENVELOPE_FIELDS.items():
        assert type(envelope[name]) is kind, (name, envelope[name])
    assert 0 <= envelope["t"] < 2**63 and 0 <= envelope["et"] < 2**63


@given(JSON)
def test_json_round_trips(value: Any) -> None:
    """Any JSON value comes back from the wire codec as it went in."""
    assert loads(dumps(value)) == value


@given(PIPELINE_NAMES, st.lists(URIS, min_size=1, max_size=5), JSON_OBJECTS, INTEGERS)
def test_a_job_envelope_round_trips(
    pipeline: str, inputs: list[str], options: dict[str, Any], enqueued_ms: int
) -> None:
    """A job encoded at enqueue is read back by the worker as the same job."""
    spec = build_spec(pipeline, inputs, options)
    envelope = load_envelope(encode_job(spec, abs(enqueued_ms) % 2**63))
    assert MALFORMED not in envelope["k"]
    assert JobSpec.model_validate(envelope["k"]) == spec
    assert (envelope["f"], envelope["a"], envelope["t"]) == (JOB_FUNCTION, [], 1)
    assert envelope["et"] == abs(enqueued_ms) % 2**63


@given(st.binary(max_size=200))
def test_any_bytes_load_as_an_envelope(raw: bytes) -> None:
    """load_envelope never raises on any bytes, and what it gives has the shape the worker
    reads (a malformed one carries the reason in 'k')."""
    assert_envelope_shape(load_envelope(raw))


@given(st.dictionaries(st.sampled_from(["t", "f", "a", "k", "et", "s", "r"]) | TEXT, JSON))
def test_any_json_object_loads_as_an_envelope(data: dict[str, Any]) -> None:
    """Whatever an object holds under arq's field names (lists for strings, huge numbers,
    a result's 's'), the envelope read from it has the shape the worker reads."""
    envelope = load_envelope(dumps(data))
    assert_envelope_shape(envelope)
    if isinstance(data.get("k"), dict) and MALFORMED not in envelope["k"]:
        assert envelope["k"] == data["k"]


@given(JOB_IDS)
def test_ids_of_the_grammar_are_accepted(job_id: str) -> None:
    """Every id the grammar allows is accepted as given."""
    assert check_job_id(job_id) == job_id


@given(TEXT | st.text(max_size=140) | st.from_regex(r"[A-Za-z0-9_.:/-]{0,130}", fullmatch=True))
def test_an_id_is_accepted_exactly_when_it_fits_the_grammar(job_id: str) -> None:
    """check_job_id accepts an id iff it matches the grammar; otherwise InvalidJob, stating it."""
    fits = re.fullmatch(JOB_ID_GRAMMAR, job_id) is not None
    refused = refusal(lambda: check_job_id(job_id), InvalidJob)
    assert (refused is None) == fits
    assert refused is None or JOB_ID_GRAMMAR in refused


@given(st.sampled_from(["sluice", "t1", "a:b"]), JOB_IDS, JOB_IDS)
def test_no_id_names_another_jobs_keys(namespace: str, first: str, second: str) -> None:
    """Two different ids never share a key: no id's keys can be another job's."""
    if first == second:
        return

    def keys_of(job_id: str) -> set[str]:
        k = Keys(namespace)
        members = {unit_member(job_id, unit) for unit in range(3)}  # queue and lease sets
        return {*k.job_keys(job_id), k.arq_job(job_id), k.arq_result(job_id), *members}

    assert not keys_of(first) & keys_of(second)


@given(st.text(max_size=100) | URIS | BAD_TEXT_URIS | HOSTILE)
def test_an_input_is_kept_or_refused_with_invalid_job(value: Any) -> None:
    """check_input keeps an input or raises InvalidJob naming it, for anything given; a kept
    input fits in a job envelope."""
    refused = refusal(lambda: check_input(3, value, SETTINGS), InvalidJob)
    if refused is not None:
        assert refused.startswith("input 3: ")
        return
    assert check_input(3, value, SETTINGS) == value
    encode_job(build_spec("p", [value], {}), 0)


@given(HOSTILE)
def test_options_are_kept_or_refused_with_invalid_job(options: Any) -> None:
    """build_spec keeps options that fit a job envelope, or raises InvalidJob: never another
    error from enqueue's encoding."""
    if refusal(lambda: build_spec("p", ["data:,x"], options), InvalidJob) is not None:
        return
    spec = build_spec("p", ["data:,x"], options)
    envelope = load_envelope(encode_job(spec, 0))
    assert JobSpec.model_validate(envelope["k"]) == spec


@given(st.dictionaries(st.sampled_from(["state", "total", "failed", "started_at"]) | TEXT, TEXT))
def test_a_status_hash_always_reads(fields: dict[str, str]) -> None:
    """A status hash with anything in its fields (written raw by another tool) reads as a
    status: unreadable numbers count as unset, never an error."""
    status = status_from_hash("job", fields)
    assert status.job_id == "job"
    assert all(type(getattr(status, n)) is int for n in ("total", "failed", "attempts"))


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe", b"[]", b'{"k": []}', b'{"k": {}, "f": [1]}'])
def test_the_fuzzed_corners_stay_covered(raw: bytes) -> None:
    """The corners the properties above found, kept as plain cases."""
    assert_envelope_shape(load_envelope(raw))
