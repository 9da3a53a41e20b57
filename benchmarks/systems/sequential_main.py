"""The sequential baseline's process: one input at a time — fetch, transform, store.

``python -m benchmarks.systems.sequential_main SPEC.json``; the spec names the Redis URL,
the results hash, the transform and the inputs. Prints ``ready`` once connected, then
starts on the first line read from stdin.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson

from benchmarks.fetching import fetch, record, session
from benchmarks.transforms import TRANSFORMS
from producer.redis.typed import Redis


async def run(spec: dict[str, Any]) -> None:
    transform = TRANSFORMS[spec["transform"]]
    redis = Redis.from_url(spec["redis_url"])
    async with session(1) as http:
        await redis.ping()
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        for index, uri in enumerate(spec["uris"]):
            try:
                result = transform(await fetch(http, uri), {})
                value = record(index, uri, result, None)
            except Exception as exc:
                value = record(index, uri, None, f"{type(exc).__name__}: {exc}")
            await redis.hset(spec["results_key"], str(index), value)
    await redis.aclose()


def main() -> None:
    asyncio.run(run(orjson.loads(Path(sys.argv[1]).read_bytes())))


if __name__ == "__main__":
    main()
