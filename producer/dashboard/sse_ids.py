"""The SSE message ids of ``GET /api/events``, and resuming from one.

One stream entry may name several jobs (enqueued together, ended by one batch) and so give
several events, all with the entry's id. A message id of the entry alone would make a
reader that left half-way through an entry resume after all of it and miss the rest; so
each message's id is ``<entry id>/<k>``, its position among that entry's messages (from 0),
and a ``Last-Event-ID`` (or ``since``) of that form reads the entry again and skips its
first k + 1. Positions count the messages this stream sends under its ``job``/``type``
filters, which a reconnecting EventSource asks for again. A plain stream id still means
"after this whole entry", as `Client.events` reads it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import NamedTuple

from producer.client.events import NEWEST, check_since
from producer.client.merged_events import LAST_SEQ
from producer.contract.events import Event

MESSAGE_ID = re.compile(r"^(\d{1,20})-(\d{1,20})/(\d{1,9})$")  # "{ms}-{seq}/{k}"


class Resume(NamedTuple):
    """Where a stream starts: after ``after``, less the first ``skip`` events of ``entry``."""

    after: str
    entry: str | None = None
    skip: int = 0


def message_id(event: Event, position: int) -> str:
    return f"{event.id}/{position}"


def resume_from(since: str) -> Resume:
    """``since`` ("$", "0", a stream id, or a message id) as a `Resume`; ValueError if it is
    none of these."""
    if since == NEWEST:
        return Resume(since)
    found = MESSAGE_ID.match(since)
    if found is None:
        try:
            return Resume(check_since(since))
        except ValueError:
            raise ValueError(
                f"since: {since!r} is not an event id: use '$' (from now on), '0' (every "
                "event kept), a stream id such as 1733390000000-0, or a message's id such "
                "as 1733390000000-0/2"
            ) from None
    ms, seq, position = (int(part) for part in found.groups())
    entry = f"{ms}-{seq}"
    return Resume(_before(ms, seq), entry, position + 1)


def _before(ms: int, seq: int) -> str:
    """The greatest stream id below ``{ms}-{seq}`` (reading after it reads that entry)."""
    if seq > 0:
        return f"{ms}-{seq - 1}"
    return f"{ms - 1}-{LAST_SEQ}" if ms > 0 else "0-0"


async def numbered(
    events: AsyncIterator[Event], resume: Resume
) -> AsyncGenerator[tuple[Event, int], None]:
    """Each event with its position among its entry's, less those `resume` says were sent."""
    entry, position = None, -1
    async for event in events:
        if event.id != entry:
            entry, position = event.id, -1
        position += 1
        if event.id == resume.entry and position < resume.skip:
            continue
        yield event, position
