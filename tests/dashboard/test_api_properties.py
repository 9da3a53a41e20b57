"""Property tests of the HTTP API's inputs against a running dashboard: whatever body, job id or
query is sent, the answer is never a server error, and every error is the one JSON shape."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from hypothesis import example, given
from hypothesis import strategies as st

from tests.dashboard.process import DashboardProcess
from tests.dashboard.support import TOKEN

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
NUMBERS = st.one_of(st.integers(), st.floats(), st.text(max_size=8))
PIPELINES = st.sampled_from(["text-stats", "thumbnail", ""]) | st.text(max_size=12)
INPUTS = st.lists(st.sampled_from(["data:,x", "https://a.example/b"]) | st.text(), max_size=4)
JOBS = st.fixed_dictionaries(
    {"pipeline": PIPELINES, "inputs": INPUTS},
    optional={
        "options": st.dictionaries(st.text(max_size=8), JSON, max_size=3),
        "job_id": st.text(max_size=20),
        "defer_s": NUMBERS,
    },
)
QUERY_VALUES = st.text(max_size=12) | st.integers().map(str)


def send(
    served: DashboardProcess, method: str, path: str, body: bytes | None = None
) -> tuple[int, Any]:
    """One request with the token; the status and the body parsed as JSON."""
    address = urlsplit(served.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    try:
        connection.request(method, path, body=body, headers=headers)
        reply = connection.getresponse()
        assert reply.getheader("Content-Type", "").startswith("application/json"), path
        return reply.status, json.loads(reply.read())
    finally:
        connection.close()


def assert_answer(status: int, body: Any) -> None:
    """No server error; an error is exactly {"error": code, "message": text}."""
    assert status < 500, body
    if status >= 400:
        assert set(body) == {"error", "message"}, body
        assert body["error"].replace("_", "").isalnum() and body["error"].islower()
        assert isinstance(body["message"], str)


@given(JOBS | JSON)
@example({"pipeline": "text-stats", "inputs": ["data:,x"], "defer_s": 1e308})
@example({"pipeline": "text-stats", "inputs": ["data:,x"], "job_id": "x/../../failed"})
def test_any_json_body_gets_a_json_answer(served: DashboardProcess, body: Any) -> None:
    """POST /api/jobs with any JSON value: 201, or a 4xx/503 of the error shape."""
    status, answer = send(served, "POST", "/api/jobs", json.dumps(body).encode())
    assert_answer(status, answer)
    if status == 201:
        assert answer["status_url"] == f"/api/jobs/{quote(answer['job_id'], safe='')}"


@given(st.binary(max_size=200))
@example(b'{"pipeline": "text-stats", "inputs": ["data:,x"], "defer_s": Infinity}')
@example(b"[" * 5000)
def test_any_bytes_body_gets_a_json_answer(served: DashboardProcess, body: bytes) -> None:
    """POST /api/jobs with any bytes at all: never a server error."""
    assert_answer(*send(served, "POST", "/api/jobs", body))


@given(st.text(min_size=1), st.sampled_from(["", "/results", "/cancel", "/retry"]))
@example("x/../../failed", "/retry")
@example("..", "")
@example("\udcff", "")
def test_any_job_id_in_a_path_gets_a_json_answer(
    served: DashboardProcess, job_id: str, action: str
) -> None:
    """Any text as the job id, escaped as one segment, for every per-job route."""
    segment = quote(job_id, safe="", errors="surrogateescape")
    method = "GET" if action in ("", "/results") else "POST"
    assert_answer(*send(served, method, f"/api/jobs/{segment}{action}"))
    if not action:
        assert_answer(*send(served, "DELETE", f"/api/jobs/{segment}"))


@given(
    st.sampled_from(["/api/jobs", "/api/failed", "/api/jobs/some-job/results"]),
    st.dictionaries(
        st.sampled_from(["page", "per_page", "state", "pipeline", "q", "start", "limit"]),
        QUERY_VALUES,
    ),
)
def test_any_query_gets_a_json_answer(
    served: DashboardProcess, path: str, query: dict[str, str]
) -> None:
    """Listings and paging with any query values: never a server error."""
    assert_answer(*send(served, "GET", f"{path}?{urlencode(query)}"))
