"""The dashboard's pages: overview, jobs, a job, the failed set, workers, schedules, login.

Each page is rendered whole on the server; its live region is the same template rendered alone
(``?partial=1``), which the page's script fetches again every `render.POLL_MS`.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from producer.client.client import Client
from producer.contract.models import ItemResult, JobState
from producer.dashboard import context
from producer.dashboard.api import PAGE_MAX, START_MAX, int_query
from producer.dashboard.auth import client_address, end_session, set_session, throttled
from producer.dashboard.job_paths import path_job_id
from producer.dashboard.listing import LISTED_STATES, page_of
from producer.dashboard.redirects import safe_next
from producer.dashboard.render import render, stage_shares

routes = web.RouteTableDef()
JOBS_PER_PAGE = 50
RESULTS_PER_PAGE = 50
FAILED_SHOWN = 50  # failed inputs listed on a job's page
FAILED_SCAN_MAX = 10_000  # records read at most to find them
FAILED_PAGE = 500
RECENT_S = 300  # "finished in the last 5 minutes" on the overview


@routes.get("/")
async def overview(request: web.Request) -> web.Response:
    client, history = context.client(request), context.history(request)
    snapshot = await context.listing(request).snapshot()
    stats = await client.stats()
    if not history.samples:
        await history.sample()  # a chart from the first view on
    recent = snapshot.finished_since(time.time() - RECENT_S)
    return render(
        request,
        "overview.html",
        counts=snapshot.counts(),
        truncated=snapshot.truncated,
        listed=len(snapshot.jobs),
        stats=stats,
        chart=history.depth_chart(),
        throughput=history.throughput(),
        recent_jobs=len(recent),
        recent_inputs=sum(j.total for j in recent),
        workers=await client.workers(),
        now=time.time(),
        recent_minutes=RECENT_S // 60,
        query=_query(request),
    )


@routes.get("/jobs")
async def jobs(request: web.Request) -> web.Response:
    state = request.query.get("state", "")
    pipeline = request.query.get("pipeline", "")
    queue = request.query.get("queue", "")
    search = request.query.get("q", "").strip()
    snapshot = await context.listing(request).snapshot()
    matched = snapshot.select(state=state, pipeline=pipeline, search=search, queue=queue)
    rows, pages = page_of(matched, int_query(request, "page", 1, 1, PAGE_MAX), JOBS_PER_PAGE)
    page = min(int_query(request, "page", 1, 1, PAGE_MAX), pages)
    pipelines = sorted(set(snapshot.pipelines()) | set(await context.client(request).pipelines()))
    return render(
        request,
        "jobs.html",
        jobs=rows,
        matched=len(matched),
        page=page,
        pages=pages,
        truncated=snapshot.truncated,
        state=state,
        pipeline=pipeline,
        search=search,
        pipelines=pipelines,
        queue=queue,
        queues=sorted({job.queue for job in snapshot.jobs} | ({queue} - {""})),
        states=[s.value for s in LISTED_STATES],
        query=_query(request),
    )


@routes.get("/jobs/{job_id}")
async def job(request: web.Request) -> web.Response:
    job_id, client = path_job_id(request), context.client(request)
    status = await client.status(job_id)
    start = int_query(request, "start", 0, 0, START_MAX)
    found = status.state != JobState.NOT_FOUND
    results = [r async for r in client.results(job_id, start=start, limit=RESULTS_PER_PAGE)]
    failed_items = await _failed_items(client, job_id, status.total) if status.failed else []
    response = render(
        request,
        "job.html",
        job=status,
        found=found,
        shares=stage_shares(status),
        results=results,
        start=start,
        per_page=RESULTS_PER_PAGE,
        failed_items=failed_items,
        failed_scan_max=FAILED_SCAN_MAX,
        now=time.time(),
        query=_query(request),
    )
    if not found:
        response.set_status(404)
    return response


@routes.get("/failed")
async def failed(request: web.Request) -> web.Response:
    jobs = await context.client(request).failed(limit=100)
    return render(request, "failed.html", jobs=jobs, query=_query(request))


@routes.get("/workers")
async def workers(request: web.Request) -> web.Response:
    live = await context.client(request).workers()
    return render(request, "workers.html", workers=live, now=time.time(), query=_query(request))


@routes.get("/schedules")
async def schedules(request: web.Request) -> web.Response:
    found = await context.client(request).schedules()
    return render(request, "schedules.html", schedules=found, query=_query(request))


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    target = safe_next(request.query.get("next"))
    return render(request, "login.html", next=target, wrong=False)


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    access = context.access(request)
    if refused := throttled(access, request):
        return refused
    form = await request.post()
    target = safe_next(str(form.get("next", "")))
    if not access.token_matches(str(form.get("token", ""))):
        access.throttle.failed(client_address(request))
        response = render(request, "login.html", next=target, wrong=True)
        response.set_status(401)
        return response
    response = web.HTTPSeeOther(target)
    set_session(response, access, request)
    raise response


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    response = web.HTTPSeeOther("/")
    end_session(response, context.access(request), request)
    raise response


def _query(request: web.Request) -> str:
    """The page's query string plus ``partial=1``: the URL its live region refreshes from."""
    params: dict[str, Any] = {k: v for k, v in request.query.items() if k != "partial"}
    params["partial"] = "1"
    return str(request.rel_url.with_query(params))


async def _failed_items(client: Client, job_id: str, total: int) -> list[ItemResult]:
    """Up to FAILED_SHOWN failed inputs, reading at most FAILED_SCAN_MAX records."""
    items: list[ItemResult] = []
    for first in range(0, min(total, FAILED_SCAN_MAX), FAILED_PAGE):
        items += [
            r async for r in client.results(job_id, start=first, limit=FAILED_PAGE) if not r.ok
        ]
        if len(items) >= FAILED_SHOWN:
            break
    return items[:FAILED_SHOWN]
