"""After logging in, the browser goes back to a page of this site, never to another host,
however the `next` target was written."""

from __future__ import annotations

import re

import aiohttp
import pytest
from ada_url import URL
from hypothesis import example, given
from hypothesis import strategies as st
from yarl import URL as YarlURL

from producer.dashboard.redirects import safe_next
from tests.dashboard.support import TOKEN, Dashboard

ORIGIN = "https://dash.example:8400"
# the pieces redirect bypasses are made of: separators, whitespace a browser strips,
# encodings, dot segments, schemes, userinfo
PIECES = st.sampled_from(
    [
        "/",
        "\\",
        "//",
        "\t",
        "\n",
        "\r",
        " ",
        "\x00",
        "\x0b",
        "\x0c",
        "\x1f",
        "\x7f",
        "%09",
        "%0a",
        "%2F",
        "%2f",
        "%5C",
        "%2e",
        ".",
        "..",
        "evil.example",
        "jobs",
        "http:",
        "https:",
        "javascript:",
        ":",
        "@",
        "?",
        "#",
        "&",
        "%",
        "%25",
        "\u3002",
        "\uff0f",
        "\u2215",
    ]
)
TARGETS = st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=8).map("".join)
UNSAFE_SHAPE = re.compile(r"^(?!/)|^/[/\\]|[\x00-\x20\x7f\\]")


def lands_on(location: str) -> str:
    """The origin a browser on ORIGIN goes to when told ``Location: location``."""
    return URL(location, ORIGIN + "/login").origin


@given(TARGETS)
@example("/%09/evil.example")
@example("/\t/evil.example")
@example("/\\evil.example")
@example(" //evil.example")
@example("/jobs/../..//evil.example")
@example("/.//evil.example")
@example("http:/\\evil.example")
def test_next_always_lands_on_this_site(target: str) -> None:
    """Whatever `next` holds, the answer is a canonical same-site path a browser cannot read
    as another host, also after aiohttp has turned it into a Location header."""
    chosen = safe_next(target)
    assert not UNSAFE_SHAPE.search(chosen), chosen
    assert lands_on(chosen) == ORIGIN
    assert lands_on(str(YarlURL(chosen))) == ORIGIN  # aiohttp's Location goes through yarl


@pytest.mark.parametrize(
    ("body", "landed"),
    [
        (b"next=/%09/evil.example", "/"),
        (b"next=%0A//evil.example", "/"),
        (b"next=/%5Cevil.example", "/"),
        (b"next=/jobs/..//evil.example", "/"),
        (b"next=/failed%3Fq%3Dx", "/failed?q=x"),
        (b"next=/jobs/a%2Fb", "/jobs/a/b"),
    ],
)
async def test_login_redirect_is_judged_after_form_decoding(
    dashboard: Dashboard, session: aiohttp.ClientSession, body: bytes, landed: str
) -> None:
    """The form field as a browser posts it (percent-encoded) never sends the user away."""
    form = b"token=" + TOKEN.encode() + b"&" + body
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with session.post(
        dashboard.at("/login"), data=form, headers=headers, allow_redirects=False
    ) as reply:
        assert reply.status == 303
        assert reply.headers["Location"] == landed
