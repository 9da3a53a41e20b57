"""Where a login may send the browser next: a path on this site, judged as a browser reads it.

A browser strips tabs and newlines anywhere in a URL, leading spaces and control characters,
reads ``\\`` as ``/``, resolves ``.`` and ``..`` (also as ``%2e``), and takes ``//host`` as
another host. Checking the raw text misses one of these sooner or later, so the target is
parsed by a WHATWG URL parser (ada, the one Node.js uses) against a placeholder origin, and
only its path, query and fragment are kept, re-serialised: what is sent back is canonical
(no space, control character or ``\\`` left), starts with one ``/``, and a browser reads it
as this site whatever the input was.
"""

from __future__ import annotations

from ada_url import URL

HOME = "/"
_BASE = "http://sluice.invalid/"  # a placeholder origin: .invalid never resolves
_ORIGIN = "http://sluice.invalid"


def safe_next(target: str | None) -> str:
    """A same-site path (with query and fragment) for ``target``, else ``/``."""
    if not target:
        return HOME
    try:
        url = URL(target, _BASE)
    except ValueError:
        return HOME
    path = url.pathname
    # a path of "//x" (e.g. from "/a/..//x") sent back alone would name host x
    if url.origin != _ORIGIN or not path.startswith("/") or path.startswith("//"):
        return HOME
    # a browser leaves a '\\' in the query or fragment as it is; sent encoded, it means the
    # same and no reader can take it for a '/'
    return path + (url.search + url.hash).replace("\\", "%5C")
