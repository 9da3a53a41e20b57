"""Reading a JSON request body strictly: one parser, one depth limit, errors a client can act on.

aiohttp's ``request.json()`` is the standard library's parser, which accepts ``NaN`` and
``Infinity`` (no other JSON reader does) and lone surrogates (which cannot be stored), and
recurses: a body nested a few thousand levels deep was a 500 (RecursionError). orjson
refuses all three (it stops at 1,024 levels by itself) and the depth is then held to
`MAX_JSON_DEPTH`, far more than a job needs and well within what orjson can write back.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

MAX_JSON_DEPTH = 64


class BadBody(ValueError):
    """The body is not JSON a job can be made of; the message says why."""


async def read_json(request: web.Request) -> Any:
    """The body as JSON; BadBody if it is not strict JSON or nests past MAX_JSON_DEPTH."""
    too_deep = f"the body nests deeper than {MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH)"
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        if exc.msg == "depth limit exceeded":  # orjson's own, at 1,024: past ours as well
            raise BadBody(too_deep) from None
        raise BadBody(f"the body must be a JSON object; it is not valid JSON: {exc}") from None
    if depth(body) > MAX_JSON_DEPTH:
        raise BadBody(too_deep)
    return body


def depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (a scalar is 0), without recursing."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level + 1)
            todo.extend((child, level + 1) for child in item)
    return deepest
