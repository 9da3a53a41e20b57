"""Binary outputs (a thumbnail...) over HTTP: ``GET /api/jobs/{id}/results/{index}/blob``.

A raster image is served inline with its own type, for the job page's previews; anything else
(and any blob with ``?download=1``) as an attachment, so a blob written by anyone into Redis is
never taken for a page by the browser (``nosniff`` is on every answer; no SVG, which can script).
"""

from __future__ import annotations

from aiohttp import web

from producer.contract.errors import JobNotFound
from producer.contract.models import ItemResult
from producer.dashboard import context
from producer.dashboard.api import int_query

IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
}
routes = web.RouteTableDef()


def image_type(record: ItemResult) -> str | None:
    """The media type of the record's blob when it is an image a page may show, else None."""
    return IMAGE_TYPES.get((record.blob or "").lower())


@routes.get("/api/jobs/{job_id}/results/{index}/blob")
async def blob(request: web.Request) -> web.Response:
    job_id, client = request.match_info["job_id"], context.client(request)
    raw_index = request.match_info["index"]
    if not raw_index.isdigit():
        raise web.HTTPBadRequest(text=f"index must be an input's number, got {raw_index!r}")
    index = int(raw_index)
    records = [r async for r in client.results(job_id, start=index, limit=1)]
    data = await client.blob(job_id, index) if records and records[0].blob else None
    if data is None:
        raise JobNotFound(f"no binary output for input {index} of job {job_id}")
    record = records[0]
    shown = image_type(record)
    download = shown is None or int_query(request, "download", 0, 0, 1) == 1
    disposition = "attachment" if download else "inline"
    headers = {"Content-Disposition": f'{disposition}; filename="{record.blob_name()}"'}
    return web.Response(
        body=data, content_type=shown or "application/octet-stream", headers=headers
    )
