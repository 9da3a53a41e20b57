"""Job ids in the dashboard's URLs: one path segment each, escaped wherever a URL is built
from an id, and refused wherever a request's path names an id no job can have.

An id may come from Redis, where anyone can write anything (``x/../../failed``): unescaped in
``/api/jobs/{id}/retry`` a browser would resolve it to another URL. Escaping covers ``/``
and the rest, but not the dot segments ``.`` and ``..``, which a browser resolves even as
``%2e``; the id grammar rules them out, and only ids that follow it are offered actions.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from producer.client.stored_ids import is_valid_id
from producer.contract.errors import InvalidJob
from producer.contract.validation import check_job_id

DOT_SEGMENTS = frozenset({"", ".", ".."})


def path_segment(job_id: str) -> str:
    """``job_id`` escaped as one URL path segment, ``/`` included."""
    return quote(job_id, safe="")


def actionable(job_id: str) -> bool:
    """Whether the dashboard may link to this job and offer actions on it."""
    return is_valid_id(job_id) and job_id not in DOT_SEGMENTS


def path_job_id(request: web.Request) -> str:
    """The job id the request's path names; InvalidJob (422) if no job can have it."""
    job_id = request.match_info["job_id"]
    check_job_id(job_id)
    if job_id in DOT_SEGMENTS:
        raise InvalidJob(f"invalid job id {job_id!r}: it cannot be one path segment")
    return job_id
