"""Fetching an input and encoding its record, for the baselines that run in the main venv.

(Sluice fetches with its own fetchers; Celery's tasks use urllib3 in ``celery_app``.)
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from benchmarks.transforms import decode_data_uri


async def fetch(session: aiohttp.ClientSession, uri: str) -> bytes:
    """The input's bytes: decoded from a data: URI, or a GET that must answer 200."""
    if uri.startswith("data:"):
        return decode_data_uri(uri)
    async with session.get(uri) as response:
        response.raise_for_status()
        return await response.read()


def record(index: int, uri: str, result: dict[str, Any] | None, error: str | None) -> bytes:
    """One stored record, shaped like Sluice's: ``{"index", "input", "ok", "result"|"error"}``."""
    if error is not None:
        return orjson.dumps({"index": index, "input": uri, "ok": False, "error": error})
    return orjson.dumps({"index": index, "input": uri, "ok": True, "result": result})


def session(connections: int) -> aiohttp.ClientSession:
    """A client session allowing ``connections`` in flight (0: no limit)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections))
