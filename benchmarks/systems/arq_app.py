"""The plain-arq baselines' worker process: one arq job per input, as most arq users write it.

``python -m benchmarks.systems.arq_app --mode inline|pool --redis-url URL --queue Q ...``

- ``inline``: the transform is called in the job coroutine (it blocks the event loop);
- ``pool``: the transform goes to a ``ProcessPoolExecutor`` per call (``run_in_executor``).

Both fetch with one aiohttp session and store the record with HSET. Also serves ``noop``
jobs (no fetch, no store): the ceiling of arq's own per-job cost.
"""

from __future__ import annotations

import argparse
import asyncio
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker, func

from benchmarks.fetching import fetch, record, session
from benchmarks.transforms import TRANSFORMS, trivial


def apply(transform: str, data: bytes) -> dict[str, Any]:
    """Runs in a pool process."""
    return TRANSFORMS[transform](data, {})


async def process(
    ctx: dict[str, Any], results_key: str, transform: str, index: int, uri: str
) -> None:
    try:
        data = await fetch(ctx["http"], uri)
        pool: ProcessPoolExecutor | None = ctx["pool"]
        if pool is None:
            result = TRANSFORMS[transform](data, {})
        else:
            result = await asyncio.get_running_loop().run_in_executor(pool, apply, transform, data)
        value = record(index, uri, result, None)
    except Exception as exc:
        value = record(index, uri, None, f"{type(exc).__name__}: {exc}")
    await ctx["redis"].hset(results_key, str(index), value)


async def noop(ctx: dict[str, Any], *args: Any) -> None:
    return None


def build(args: argparse.Namespace) -> Worker:
    async def startup(ctx: dict[str, Any]) -> None:
        ctx["http"] = session(args.fetch_concurrency)
        ctx["pool"] = None
        if args.mode == "pool":
            pool = ProcessPoolExecutor(max_workers=args.pool_size)
            loop = asyncio.get_running_loop()
            await asyncio.gather(
                *(loop.run_in_executor(pool, trivial, b"", {}) for _ in range(args.pool_size))
            )
            ctx["pool"] = pool

    async def shutdown(ctx: dict[str, Any]) -> None:
        await ctx["http"].close()
        if ctx["pool"] is not None:
            ctx["pool"].shutdown()

    return Worker(
        functions=[func(process, name="process"), func(noop, name="noop")],
        queue_name=args.queue,
        redis_settings=RedisSettings.from_dsn(args.redis_url),
        on_startup=startup,
        on_shutdown=shutdown,
        max_jobs=args.max_jobs,
        poll_delay=args.poll_delay,
        log_results=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="A plain arq worker for the benchmark.")
    parser.add_argument("--mode", choices=("inline", "pool"), required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--max-jobs", type=int, default=64)
    parser.add_argument("--fetch-concurrency", type=int, default=64)
    parser.add_argument("--pool-size", type=int, default=2)
    parser.add_argument("--poll-delay", type=float, default=0.05)
    args = parser.parse_args()
    asyncio.set_event_loop(asyncio.new_event_loop())
    build(args).run()


if __name__ == "__main__":
    main()
