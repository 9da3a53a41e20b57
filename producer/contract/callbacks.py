"""Which URLs a webhook may be sent to: the one check of a job's ``callback_url`` (at enqueue)
and of the namespace default (``SLUICE_WEBHOOK_URL``, at a worker's start-up).

A callback URL is stored in the job's status hash, which anyone who can read Redis (or the
dashboard) sees, so it may carry no user name or password: a receiver authenticates the
call by its signature (docs/webhooks.md). Where the URL points is checked again at delivery,
by the worker's address guard (private addresses refused unless SLUICE_FETCH_ALLOW allows).
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_CALLBACK_URL_CHARS = 2048


def callback_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a webhook's target, or None: an absolute http(s) URL
    with a host, no credentials, no fragment, at most MAX_CALLBACK_URL_CHARS long."""
    if len(url) > MAX_CALLBACK_URL_CHARS:
        return f"is {len(url)} characters, over the limit of {MAX_CALLBACK_URL_CHARS}"
    if not url.isascii() or any(c.isspace() or ord(c) < 32 for c in url):
        return "must be ASCII without spaces or control characters (percent-encode the rest)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"is not a URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if not parts.hostname:
        return "has no host"
    if "@" in parts.netloc:
        return (
            "must not carry a user name or password (it is shown in the job's status); "
            "the receiver checks the X-Sluice-Signature header instead"
        )
    if parts.fragment or url.endswith("#"):
        return "must not have a #fragment (it is never sent)"
    return None
