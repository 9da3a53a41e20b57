"""POST /api/jobs refuses bad jobs with a clear JSON error, and enqueues nothing from them."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from producer import Client
from producer.redis.typed import Redis
from tests.dashboard.conftest import StartDashboard
from tests.dashboard.support import TOKEN, Dashboard, call, namespace_keys
from tests.support.workers import WorkerFactory

GOOD = {"pipeline": "text-stats", "inputs": ["data:,x"]}
NESTED: list[Any] = []
for _ in range(100):
    NESTED = [NESTED]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{not json", 400, "JSON object"),
        (["text-stats"], 422, "valid dictionary"),
        ({"inputs": ["data:,x"]}, 422, "pipeline: Field required"),
        ({**GOOD, "pipeline": "Bad Name!"}, 422, "pipeline: String should match pattern"),
        ({**GOOD, "inputs": ["example.com/a.txt"]}, 422, "input 0: 'example.com/a.txt' has no URI"),
        ({**GOOD, "inputs": ["data:,a", ""]}, 422, "input 1: is empty"),
        ({**GOOD, "inputs": ["data:,a", 7]}, 422, "inputs.1: Input should be a valid string"),
        ({**GOOD, "inputs": []}, 422, "at least one input"),
        ({**GOOD, "inputs": ["data:,a", "data:,b", "data:,c"]}, 422, "SLUICE_MAX_INPUTS_PER_JOB"),
        ({**GOOD, "inputs": ["data:," + "x" * 300]}, 422, "SLUICE_MAX_INPUT_CHARS"),
        ({**GOOD, "job_id": "no spaces allowed"}, 422, "invalid job id"),
        ({**GOOD, "job_id": "victim:results"}, 422, "invalid job id 'victim:results'"),
        ({**GOOD, "job_id": "x/../../failed"}, 422, "no ':', '/' or spaces"),
        ({**GOOD, "job_id": ""}, 422, "invalid job id ''"),
        ({**GOOD, "defer_s": -1}, 422, "defer_s: Input should be greater than or equal to 0"),
        ({**GOOD, "options": "fast"}, 422, "options: Input should be a valid dictionary"),
        ({**GOOD, "urgency": 1}, 422, "urgency: Extra inputs are not permitted"),
        ({**GOOD, "priority": 10}, 422, "priority: Input should be less than or equal to 9"),
        ({**GOOD, "queue": "Bad Queue"}, 422, "queue: String should match pattern"),
        ({**GOOD, "timeout_s": 0}, 422, "timeout_s: Input should be greater than 0"),
        ({**GOOD, "defer_s": 1e308}, 422, "defer_s: Input should be less than or equal to"),
        (b'{"pipeline": "text-stats", "inputs": ["data:,x"], "defer_s": Infinity}', 400, "JSON"),
        (b'{"pipeline": "text-stats", "inputs": ["data:,x"], "defer_s": NaN}', 400, "JSON"),
        (b'{"pipeline": "text-stats", "inputs": ["\\ud800"]}', 400, "JSON"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "deeper than 64 levels (MAX_JSON_DEPTH)"),
        ({**GOOD, "options": {"a": NESTED}}, 400, "deeper than 64 levels"),
        # what JSON readers take but cannot carry on (NaN, infinities, lone surrogates) is
        # refused by the strict parser above (400); an integer past 64 bits is read as a
        # float, as JavaScript reads it (Client.enqueue refuses one: tests/test_fuzz_options)
    ],
)
async def test_invalid_job_is_refused(
    start_dashboard: StartDashboard,
    session: aiohttp.ClientSession,
    redis: Redis,
    namespace: str,
    body: Any,
    status: int,
    says: str,
) -> None:
    """Each invalid body gets its status and a message naming the problem; no key is written."""
    board = await start_dashboard(max_inputs_per_job=2, max_input_chars=256)
    raw = body if isinstance(body, bytes) else None
    json = None if isinstance(body, bytes) else body
    reply = await call(session, "POST", board.at("/api/jobs"), token=TOKEN, json=json, data=raw)
    assert reply.status == status, reply.body
    assert reply.body["error"] in ("bad_json", "invalid_job")
    assert says in reply.body["message"]
    assert await namespace_keys(redis, namespace) == []


async def test_oversized_body_is_refused(
    start_dashboard: StartDashboard, session: aiohttp.ClientSession, redis: Redis, namespace: str
) -> None:
    """A job over SLUICE_MAX_PAYLOAD_BYTES is refused: 422 from the client's check, 413 past the
    body limit; nothing is written either way."""
    board = await start_dashboard(max_payload_bytes=2048)
    over_payload = {**GOOD, "inputs": [f"data:,{i:04d}" + "y" * 60 for i in range(40)]}
    reply = await call(session, "POST", board.at("/api/jobs"), token=TOKEN, json=over_payload)
    assert (reply.status, reply.body["error"]) == (422, "invalid_job")
    assert "SLUICE_MAX_PAYLOAD_BYTES" in reply.body["message"]
    huge = {**GOOD, "inputs": ["data:," + "z" * 100_000]}
    reply = await call(session, "POST", board.at("/api/jobs"), token=TOKEN, json=huge)
    assert (reply.status, reply.body["error"]) == (413, "request_entity_too_large")
    assert "at most 2048 bytes (SLUICE_MAX_PAYLOAD_BYTES)" in reply.body["message"]
    assert await namespace_keys(redis, namespace) == []


async def test_unknown_pipeline_is_refused(
    dashboard: Dashboard,
    session: aiohttp.ClientSession,
    workers: WorkerFactory,
    redis: Redis,
    client: Client,
) -> None:
    """Once a worker has registered its pipelines, a job naming another one is refused."""
    workers()
    body = {**GOOD, "pipeline": "no-such-pipeline"}
    reply = await call(session, "POST", dashboard.at("/api/jobs"), token=TOKEN, json=body)
    assert (reply.status, reply.body["error"]) == (422, "invalid_job")
    assert "unknown pipeline 'no-such-pipeline'; registered:" in reply.body["message"]
    assert await redis.zcard(client.keys.queue) == 0


async def test_bad_options_are_refused(
    dashboard: Dashboard,
    session: aiohttp.ClientSession,
    workers: WorkerFactory,
    redis: Redis,
    client: Client,
) -> None:
    """Once a worker has registered its pipelines, options their schema refuses get 422
    naming the option; nothing is queued."""
    workers()
    body = {**GOOD, "pipeline": "thumbnail", "options": {"format": "TIFF", "widht": 9}}
    reply = await call(session, "POST", dashboard.at("/api/jobs"), token=TOKEN, json=body)
    assert (reply.status, reply.body["error"]) == (422, "invalid_job")
    assert reply.body["message"].startswith(
        "invalid options for pipeline 'thumbnail': format: 'TIFF' is not one of ['PNG',"
    )
    assert "; widht: unknown option (known: format, height, width)" in reply.body["message"]
    assert await redis.zcard(client.keys.queue) == 0


async def test_duplicate_id_409_and_full_queue_503(
    start_dashboard: StartDashboard, session: aiohttp.ClientSession, redis: Redis, client: Client
) -> None:
    """A taken job id gets 409; past SLUICE_MAX_QUEUED_JOBS, 503 with Retry-After."""
    board = await start_dashboard(max_queued_jobs=1, enqueue_timeout_s=0)
    url = board.at("/api/jobs")
    first = await call(session, "POST", url, token=TOKEN, json={**GOOD, "job_id": "the-one"})
    assert (first.status, first.body["job_id"]) == (201, "the-one")
    same = await call(session, "POST", url, token=TOKEN, json={**GOOD, "job_id": "the-one"})
    assert (same.status, same.body["error"]) == (409, "job_exists")
    full = await call(session, "POST", url, token=TOKEN, json=GOOD)
    assert (full.status, full.body["error"]) == (503, "queue_full")
    assert "SLUICE_MAX_QUEUED_JOBS" in full.body["message"]
    assert int(full.headers["Retry-After"]) > 0
    assert await redis.zrange(client.keys.queue, 0, -1) == [b"the-one"]


async def test_redis_unreachable_is_503_without_secrets(
    start_dashboard: StartDashboard, session: aiohttp.ClientSession
) -> None:
    """With Redis down, reads and pages answer 503 naming the server with its password hidden."""
    from tests.support.servers import free_port

    url = f"redis://default:hunter2-secret@127.0.0.1:{free_port()}"
    board = await start_dashboard(redis_url=url)
    reply = await call(session, "GET", board.at("/api/stats"))
    assert (reply.status, reply.body["error"]) == (503, "server_unavailable")
    assert "redis://***@127.0.0.1" in reply.body["message"]
    page = await call(session, "GET", board.at("/"))
    assert page.status == 503
    for text in (str(reply.body), page.body):
        assert "hunter2-secret" not in text
