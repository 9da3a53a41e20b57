"""Rendering pages: the Jinja environment (autoescaped), its filters, the context every page
shares, and the security headers every answer carries."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

import jinja2
from aiohttp import web

from producer.client.display import format_seconds, format_time
from producer.contract.errors import ServerUnavailable
from producer.contract.liveness import LIVE_S
from producer.contract.models import STAGES, JobStatus
from producer.dashboard import context
from producer.dashboard.blobs import image_type
from producer.dashboard.job_paths import actionable, path_segment
from producer.redis.connection import server_label

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
POLL_MS = 1500  # how often a page's live regions refresh
HEADERS = {
    # no inline script or style anywhere: the pages load /static/ files only
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
STAGE_COUNTS = {"fetch": "fetched", "transform": "transformed", "store": "stored"}


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("producer.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=format_time, seconds=format_seconds, ago=ago, number=number, segment=path_segment
    )
    env.filters.update(previewable=lambda record: image_type(record) is not None)
    env.tests.update(actionable=actionable)
    env.globals.update(STAGES=STAGES, STAGE_COUNTS=STAGE_COUNTS, poll_ms=POLL_MS, live_s=LIVE_S)
    return env


def number(value: float | int | None) -> str:
    return "-" if value is None else f"{value:,}"


def ago(epoch_s: float | str | None) -> str:
    """How long ago, in whole seconds: ``5 s ago``, ``1 min 52 s ago``."""
    if epoch_s in (None, ""):
        return "-"
    return f"{format_seconds(max(0.0, time.time() - float(epoch_s or 0)), places=0)} ago"


def stage_shares(status: JobStatus) -> dict[str, float]:
    """How busy each stage's capacity was with the job, 0..1 (`StageTiming.utilisation`),
    and the fetch slots' share spent waiting for rate limits ("rate_limit"); for a job whose
    capacities are not known, each stage's share of the time in stages."""
    timed = status.timed()  # the stages, and the waiting for rate limits if any
    if all(t.utilisation is not None for t in timed.values() if t.count):
        return {name: t.utilisation or 0.0 for name, t in timed.items()}
    busy = {name: t.total_s for name, t in timed.items()}
    total = sum(busy.values())
    return {name: (s / total if total else 0.0) for name, s in busy.items()}


def redis_address(request: web.Request) -> str:
    """The Redis URL with any password hidden (or the sentinels): the only way the server is
    ever shown."""
    try:
        return server_label(context.settings(request))
    except ServerUnavailable:
        return "(no server found)"


def render(request: web.Request, template: str, **values: Any) -> web.Response:
    """Render a page, or only its live region ``?partial=1`` names, with the shared context."""
    access = context.access(request)
    shared = {
        "request": request,
        "path": request.path,
        "namespace": context.settings(request).namespace,
        "redis": redis_address(request),
        "read_only": access.read_only,
        "token_set": access.token is not None,
        "logged_in": access.logged_in(request),
        "can_act": access.actions_enabled and access.logged_in(request),
        "login_required": access.require_login,
    }
    if request.query.get("partial"):
        template = f"partials/{template}"
    html = environment().get_template(template).render(**shared, **values)
    return web.Response(text=html, content_type="text/html")


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every answer; note that someone is watching (see `history`)."""
    if not request.path.startswith("/static/"):
        context.history(request).viewed()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(HEADERS)
        raise
    response.headers.update(HEADERS)
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response
