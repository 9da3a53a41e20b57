"""Options are checked at enqueue against the schemas workers publish in ``{ns}:pipelines``
(Client, enqueue_many, CLI, HTTP API), and again by the worker; before any worker has
registered, the worker alone judges them."""

from __future__ import annotations

from typing import Any

import pytest

from producer import Client, ClientSettings, InvalidJob, JobState
from producer.contract.wire import dumps
from producer.redis.typed import Redis
from tests.support.cli import sluice
from tests.support.http_server import HttpServer
from tests.support.workers import WorkerFactory
from worker.registry import REGISTRY, load_modules

load_modules([])


async def register(redis: Redis, client: Client, *names: str) -> None:
    """Publish these pipelines' descriptions as a worker's heartbeat does."""
    described = {name: dumps(REGISTRY.pipelines[name].describe()) for name in names}
    await redis.hset(client.keys.pipelines, mapping=described)


@pytest.mark.parametrize(
    ("pipeline", "options", "message"),
    [
        ("thumbnail", {"width": "abc"}, "width: 'abc' is not of type 'integer'"),
        ("thumbnail", {"width": 0}, "width: 0 is less than the minimum of 1"),
        ("thumbnail", {"format": "TIFF"}, "format: 'TIFF' is not one of ['PNG', 'JPEG'"),
        ("thumbnail", {"widht": 100}, "widht: unknown option (known: format, height, width)"),
        ("text-stats", {"top": 3}, "top: unknown option (known: none)"),
    ],
)
async def test_bad_options_are_refused_at_enqueue(
    client: Client, redis: Redis, pipeline: str, options: dict[str, Any], message: str
) -> None:
    """A wrong type, a value out of range or not in the list, a misspelt or unknown option:
    InvalidJob naming the pipeline, the option and what is wrong; nothing is queued."""
    await register(redis, client, "thumbnail", "text-stats")
    expected = f"invalid options for pipeline {pipeline!r}: {message}"
    with pytest.raises(InvalidJob) as refused:
        await client.enqueue(pipeline, ["data:,x"], options=options)
    assert str(refused.value).startswith(expected)
    with pytest.raises(InvalidJob) as refused:
        await client.enqueue_many(pipeline, [["data:,x"]] * 3, options=options)
    assert str(refused.value).startswith(expected)
    assert await redis.zcard(client.keys.queue) == 0


async def test_every_problem_is_named(client: Client, redis: Redis) -> None:
    """Several bad options are reported together, each with its own reason."""
    await register(redis, client, "thumbnail")
    with pytest.raises(InvalidJob) as refused:
        await client.enqueue("thumbnail", ["data:,x"], options={"width": -1, "hieght": 2})
    assert str(refused.value) == (
        "invalid options for pipeline 'thumbnail': hieght: unknown option (known: format, "
        "height, width); width: -1 is less than the minimum of 1"
    )


async def test_good_options_pass(client: Client, redis: Redis) -> None:
    """Options the model accepts are accepted at enqueue too, in every spelling it takes."""
    await register(redis, client, "thumbnail", "text-stats")
    for options in [{}, {"width": 64, "format": "jpg"}, {"height": 4096, "format": "WEBP"}]:
        await client.enqueue("thumbnail", ["data:,x"], options=options)
    await client.enqueue("text-stats", ["data:,x"])
    assert await redis.zcard(client.keys.queue) == 4


async def test_an_unusable_registry_leaves_options_to_the_worker(
    client: Client, redis: Redis, http: HttpServer
) -> None:
    """Entries that are not JSON, have no usable schema, refer to a remote schema (never
    fetched) or have a name that is not UTF-8 never break enqueue: those pipelines' options
    are left to the worker."""
    http.documents["/schema.json"] = b'{"type": "string"}'
    await redis.hset(
        client.keys.pipelines,
        mapping={
            "not-json": b"{oops",
            "bad-schema": dumps({"options": {"type": 12}}),
            "remote": dumps({"options": {"$ref": http.url("/schema.json")}}),
            b"\xff\xfe": dumps({"options": {}}),
        },
    )
    for name in ("not-json", "bad-schema", "remote"):
        await client.enqueue(name, ["data:,x"], options={"anything": 1})
    assert http.total_hits == 0
    with pytest.raises(InvalidJob, match=r"unknown pipeline 'nope'; registered: .*not-json"):
        await client.enqueue("nope", ["data:,x"])


PATTERNED = {
    "type": "object",
    "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}},
    "patternProperties": {"^x_(a+)+$": {"type": "integer"}},
    "additionalProperties": False,
}


async def test_a_schemas_regular_expressions_match_in_linear_time(
    client: Client, redis: Redis
) -> None:
    """A pattern that backtracks without end in Python's ``re`` (``^(a+)+$`` against 40 a's
    and a b took minutes) is matched as the worker's pydantic model matches it, at once: what
    fits is queued, what does not is refused naming the value and the pattern."""
    await redis.hset(client.keys.pipelines, "patterned", dumps({"options": PATTERNED}))
    evil = "a" * 40 + "b"
    await client.enqueue("patterned", ["data:,x"], options={"code": "aaaa", "x_aa": 3})
    with pytest.raises(InvalidJob, match=rf"code: '{evil}' does not match '\^\(a\+\)\+\$'"):
        await client.enqueue("patterned", ["data:,x"], options={"code": evil})
    with pytest.raises(InvalidJob, match=r"x_aa: 'three' is not of type 'integer'"):
        await client.enqueue("patterned", ["data:,x"], options={"x_aa": "three"})
    with pytest.raises(InvalidJob, match=rf"'x_{evil}' does not match any of the regexes"):
        await client.enqueue("patterned", ["data:,x"], options={f"x_{evil}": 1})


async def test_a_pattern_the_worker_could_not_compile_is_left_to_the_worker(
    client: Client, redis: Redis
) -> None:
    """A backreference or a look-around (no pydantic model can hold one) is not checked at
    enqueue; the rest of the schema is."""
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "(a)\\1"}}}
    await redis.hset(client.keys.pipelines, "backref", dumps({"options": schema}))
    await client.enqueue("backref", ["data:,x"], options={"code": "zz"})
    with pytest.raises(InvalidJob, match=r"code: 3 is not of type 'string'"):
        await client.enqueue("backref", ["data:,x"], options={"code": 3})


async def test_before_any_worker_registers_the_worker_refuses_bad_options(
    client: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """With no pipeline registered, a job with bad options is queued; the worker fails it
    naming the option, and the next enqueue is refused at once."""
    job_id = await client.enqueue("thumbnail", ["data:,x"], options={"widht": 100})
    workers()
    status = await client.wait(job_id, timeout_s=60)
    assert status.state == JobState.FAILED
    assert (
        status.error
        == "invalid options for pipeline 'thumbnail': widht: Extra inputs are not permitted"
    )
    async with Client(client.settings) as fresh:  # reads the registry the worker wrote
        with pytest.raises(InvalidJob, match="widht: unknown option"):
            await fresh.enqueue("thumbnail", ["data:,x"], options={"widht": 100})


def test_cli_bad_option_exits_2(settings: ClientSettings, workers: WorkerFactory) -> None:
    """`--option width=abc` against a worker's registry: exit 2 naming the option."""
    workers()
    env = {"SLUICE_REDIS_URL": str(settings.redis_url), "SLUICE_NAMESPACE": settings.namespace}
    result = sluice(env, "enqueue", "thumbnail", "data:,x", "--option", "width=abc")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: invalid options for pipeline 'thumbnail': width: 'abc' is not of type 'integer'\n"
    )
