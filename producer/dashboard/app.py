"""The dashboard's aiohttp application: `create_app` builds it, `serve` runs it until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from producer.client.client import Client
from producer.contract.http_log import server_logger
from producer.dashboard import api, blobs, context, pages, stream
from producer.dashboard.auth import Access, auth_middleware
from producer.dashboard.errors import PAYLOAD_LIMIT, error_middleware
from producer.dashboard.history import SAMPLE_S, History
from producer.dashboard.hosts import HostCheck, host_middleware
from producer.dashboard.listing import JobListing
from producer.dashboard.openapi import spec
from producer.dashboard.render import headers_middleware
from producer.dashboard.settings import DashboardSettings
from producer.redis.connection import server_label

STATIC = Path(__file__).parent / "static"
BODY_SLACK = 64 * 1024  # JSON around the job envelope: keys, quotes, escapes


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(spec())


def create_app(
    settings: DashboardSettings, *, sample_s: float = SAMPLE_S, host: str | None = None
) -> web.Application:
    """The dashboard and API for these settings, listening on ``host`` (default
    SLUICE_DASHBOARD_HOST); opens its Client when the app starts."""
    access = Access.from_settings(settings)
    hosts = HostCheck.from_settings(settings, host or settings.dashboard_host)
    app = web.Application(
        # the outermost first: a foreign Host is refused before anything is done; errors
        # become answers after auth and headers had their say
        middlewares=[
            host_middleware(hosts),
            headers_middleware,
            error_middleware,
            auth_middleware(access),
        ],
        client_max_size=settings.max_payload_bytes + BODY_SLACK,
    )
    app[context.SETTINGS] = settings
    app[PAYLOAD_LIMIT] = settings.max_payload_bytes
    app[context.ACCESS] = access
    app[stream.CLOSING] = asyncio.Event()
    app.on_shutdown.append(stream.close_streams)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        client = Client(settings)
        app[context.CLIENT] = client
        app[context.LISTING] = listing = JobListing(client, settings.dashboard_max_listed)
        app[context.HISTORY] = history = History(client, listing, sample_s)
        sampler = asyncio.create_task(history.run(), name="dashboard-history")
        yield
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await client.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_routes(api.routes)
    app.router.add_routes(blobs.routes)
    app.router.add_routes(stream.routes)
    app.router.add_get("/api/openapi.json", openapi)
    app.router.add_routes(pages.routes)
    app.router.add_static("/static/", STATIC)
    return app


async def _serve(settings: DashboardSettings, host: str, port: int) -> None:
    app, logger = create_app(settings, host=host), server_logger("sluice.dashboard.http")
    runner = web.AppRunner(app, access_log=None, logger=logger)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        redis = server_label(settings)
        print(
            f"Sluice dashboard on http://{shown}:{bound[1]}/ (API: /api, namespace "
            f"{settings.namespace}, Redis {redis}); Ctrl-C stops it",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def serve(settings: DashboardSettings, host: str, port: int) -> None:
    """Serve the dashboard and API on ``host:port`` until SIGINT or SIGTERM."""
    asyncio.run(_serve(settings, host, port))
