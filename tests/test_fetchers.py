"""The built-in fetchers against real servers and files: limits, retries, errors, messages."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import re
import threading
import time
import tracemalloc
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support.http_server import HttpServer
from tests.support.servers import free_port
from worker.errors import FetchError
from worker.fetchers.data import DataFetcher
from worker.fetchers.file import FileFetcher, opened_path
from worker.fetchers.http import HttpFetcher
from worker.fetchers.retry import parse_retry_after
from worker.registry import REGISTRY
from worker.settings import WorkerConfig

MiB = 1024 * 1024
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_config(**settings: Any) -> WorkerConfig:
    """A worker config for fetch tests: loopback allowed, no retries, short backoff."""
    base: dict[str, Any] = {
        "fetch_allow": ["127.0.0.0/8"],
        "fetch_retries": 0,
        "fetch_backoff_s": 0.01,
    }
    return WorkerConfig(_env_file=None, **(base | settings))


async def http_fetch(uri: str, max_bytes: int = MiB, **settings: Any) -> bytes:
    """Fetch one URI with a fresh HTTP fetcher, closed afterwards."""
    fetcher = HttpFetcher(make_config(**settings))
    try:
        return await fetcher.fetch(uri, max_bytes)
    finally:
        await fetcher.close()


@dataclass
class Site:
    """A local server in the test's own loop; ``routes`` maps paths to handlers."""

    port: int
    routes: dict[str, Route]
    hits: Counter[str] = field(default_factory=Counter)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{path}"


@asynccontextmanager
async def serve() -> AsyncIterator[Site]:
    """Serve a `Site` on a free loopback port until the block ends; ``hits`` counts requests."""
    site = Site(0, {})

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        site.hits[path] += 1
        route = site.routes.get(path)
        return await route(request) if route else web.Response(status=404, reason="Not Found")

    app = web.Application()
    app.router.add_get("/{path:.*}", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    site.port = runner.addresses[0][1]
    try:
        yield site
    finally:
        await runner.cleanup()


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    """A local HTTP server whose routes the test fills in."""
    async with serve() as s:
        yield s


def answers(*responses: Callable[[], web.StreamResponse]) -> Route:
    """A handler giving these responses in turn, then the last one again."""
    calls = 0

    async def route(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        return responses[min(calls, len(responses)) - 1]()

    return route


def redirect(location: str) -> Route:
    """A handler answering 302 to ``location``."""
    return answers(lambda: web.Response(status=302, headers={"Location": location}))


async def endless_body(request: web.Request) -> web.StreamResponse:
    """A chunked body (no Content-Length) that never ends; stops when the client leaves."""
    resp = web.StreamResponse()
    await resp.prepare(request)
    try:
        while True:
            await resp.write(b"x" * 65536)
    except (ConnectionError, RuntimeError):
        return resp


def test_builtin_fetchers_are_registered() -> None:
    """Importing worker.fetchers registers http, https, file and data; http(s) share a factory."""
    import worker.fetchers  # noqa: F401

    assert {"http", "https", "file", "data"} <= set(REGISTRY.fetchers)
    assert REGISTRY.fetchers["http"] is REGISTRY.fetchers["https"]


async def test_http_fetches_the_body(http: HttpServer) -> None:
    """A 200 response's body is returned as is, in one request."""
    http.documents["a.txt"] = b"hello world"
    assert await http_fetch(http.url("a.txt")) == b"hello world"
    assert http.hits == {"a.txt": 1}


async def test_404_is_not_retried(http: HttpServer) -> None:
    """A 4xx fails at once with the status and URL, however many retries are allowed."""
    with pytest.raises(FetchError, match=r"^HTTP 404 Not Found from http://127\.0\.0\.1:\d+/nope$"):
        await http_fetch(http.url("nope"), fetch_retries=3)
    assert http.hits == {"nope": 1}


async def test_503_then_200_is_retried(site: Site) -> None:
    """A 5xx is retried and the later success returned."""
    site.routes["doc"] = answers(lambda: web.Response(status=503), lambda: web.Response(text="ok"))
    assert await http_fetch(site.url("doc"), fetch_retries=2) == b"ok"
    assert site.hits["doc"] == 2


async def test_retries_run_out(site: Site) -> None:
    """A 5xx that persists fails after 1 + fetch_retries attempts, saying how many."""
    site.routes["doc"] = answers(lambda: web.Response(status=502))
    with pytest.raises(FetchError, match=r"HTTP 502 Bad Gateway from .*/doc \(3 attempts\)$"):
        await http_fetch(site.url("doc"), fetch_retries=2)
    assert site.hits["doc"] == 3


async def test_429_retry_after_is_honoured(site: Site) -> None:
    """A 429's Retry-After (seconds) sets the wait before the retry, not the short backoff."""
    site.routes["doc"] = answers(
        lambda: web.Response(status=429, headers={"Retry-After": "1"}),
        lambda: web.Response(text="ok"),
    )
    start = time.monotonic()
    assert await http_fetch(site.url("doc"), fetch_retries=1) == b"ok"
    assert time.monotonic() - start >= 0.95
    assert site.hits["doc"] == 2


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        ("9999", 30.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("soon", None),
        ("²", None),  # a digit to str.isdigit, not to float: was a ValueError out of the fetch
        ("٣", None),  # an Arabic-Indic 3: RFC 9110's delay-seconds are ASCII digits
        (None, None),
    ],
)
def test_retry_after_parsing(header: str | None, seconds: float | None) -> None:
    """Retry-After in seconds or as an HTTP date, capped at 30 s; junk is ignored."""
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(header, now) == seconds


async def test_timeout_is_retried_then_fails(site: Site) -> None:
    """A response slower than fetch_timeout_s times out, is retried, then fails saying so."""

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1)
        return web.Response(text="late")

    site.routes["slow"] = slow
    with pytest.raises(FetchError, match=r"timed out after 0\.2 s fetching .*/slow \(2 attempts\)"):
        await http_fetch(site.url("slow"), fetch_timeout_s=0.2, fetch_retries=1)
    assert site.hits["slow"] == 2


async def test_connection_refused_is_retried() -> None:
    """Nothing listening: a connection error, retried, then reported with the URL."""
    url = f"http://127.0.0.1:{free_port()}/doc"
    with pytest.raises(FetchError, match=rf"cannot fetch {url}: .*\(2 attempts\)"):
        await http_fetch(url, fetch_retries=1)


async def test_content_length_over_the_limit(http: HttpServer) -> None:
    """A declared body over max_bytes is refused before it is read."""
    http.documents["big"] = b"x" * 2000
    with pytest.raises(
        FetchError, match=r"2000 bytes \(Content-Length\) is over the limit of 1000"
    ):
        await http_fetch(http.url("big"), max_bytes=1000)


async def test_body_at_the_limit_is_accepted(http: HttpServer) -> None:
    """A body of exactly max_bytes is fine."""
    http.documents["exact"] = b"x" * 1000
    assert len(await http_fetch(http.url("exact"), max_bytes=1000)) == 1000


async def test_streamed_body_is_cut_off(site: Site) -> None:
    """A body without Content-Length that grows past max_bytes is cut off while streaming."""
    site.routes["endless"] = endless_body
    with pytest.raises(FetchError, match=r"^response body over the limit of 1048576 bytes from"):
        await http_fetch(site.url("endless"), max_bytes=MiB)


async def test_gzip_bomb_is_cut_off_without_inflating(site: Site) -> None:
    """256 MiB of gzipped zeros stops at the limit, with little memory used on the way."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    zeros = bytes(MiB)
    bomb = b"".join(packer.compress(zeros) for _ in range(256)) + packer.flush()
    assert len(bomb) < MiB  # under the limit as sent: only the decompressed size is over
    site.routes["bomb"] = answers(
        lambda: web.Response(body=bomb, headers={"Content-Encoding": "gzip"})
    )
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match="response body over the limit of 1048576 bytes"):
            await http_fetch(site.url("bomb"), max_bytes=MiB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * MiB


async def test_gzip_body_is_decompressed(site: Site) -> None:
    """A gzip-encoded body comes back decompressed."""
    site.routes["z"] = answers(
        lambda: web.Response(
            body=gzip.compress(b"plain" * 100), headers={"Content-Encoding": "gzip"}
        )
    )
    assert await http_fetch(site.url("z")) == b"plain" * 100


@pytest.mark.parametrize("coding", ["x-snappy", "gzip, gzip"])
async def test_a_content_encoding_not_decoded_fails_the_input(site: Site, coding: str) -> None:
    """A body in a coding aiohttp does not decode (an unknown one, or two stacked) fails the
    input naming it: it was handed to the transform still encoded, as if it were the content.
    One that says 'identity' is the content as it is."""
    packed = gzip.compress(gzip.compress(b"plain"))
    site.routes["z"] = answers(
        lambda: web.Response(body=packed, headers={"Content-Encoding": coding})
    )
    site.routes["same"] = answers(
        lambda: web.Response(body=b"plain", headers={"Content-Encoding": "Identity"})
    )
    with pytest.raises(FetchError) as caught:
        await http_fetch(site.url("z"))
    assert str(caught.value) == (
        f"cannot fetch {site.url('z')}: unsupported Content-Encoding {coding!r} "
        "(decoded: br, deflate, gzip, zstd)"
    )
    assert await http_fetch(site.url("same")) == b"plain"


async def test_redirects_are_followed_and_bounded(site: Site) -> None:
    """A redirect chain is followed; a loop stops after 10 redirects."""
    site.routes["from"] = redirect("/to")
    site.routes["to"] = answers(lambda: web.Response(text="arrived"))
    site.routes["loop"] = redirect("/loop")
    assert await http_fetch(site.url("from")) == b"arrived"
    with pytest.raises(FetchError, match=r"too many redirects \(more than 10\)"):
        await http_fetch(site.url("loop"))
    assert site.hits["loop"] == 11


async def test_cookies_set_for_one_input_are_not_sent_with_another(site: Site) -> None:
    """Inputs are fetched independently: a cookie one response sets (say, a session for
    one job's URL) never rides along on a later request, whichever job it belongs to."""
    sent: list[str | None] = []

    async def record(request: web.Request) -> web.StreamResponse:
        sent.append(request.headers.get("Cookie"))
        response = web.Response(text="ok")
        response.set_cookie("session", "secret-of-job-1", path="/")
        return response

    site.routes["a"] = site.routes["b"] = record
    fetcher = HttpFetcher(make_config())
    try:
        for path in ("a", "b", "a"):
            assert await fetcher.fetch(site.url(path, host="localhost"), MiB) == b"ok"
    finally:
        await fetcher.close()
    assert sent == [None, None, None]


async def test_credentials_never_appear_in_messages(http: HttpServer) -> None:
    """The URL's user name and password are stripped from error messages."""
    url = http.url("missing").replace("http://", "http://alice:hunter2@")
    with pytest.raises(FetchError) as caught:
        await http_fetch(url)
    assert "hunter2" not in str(caught.value) and "alice" not in str(caught.value)
    assert http.url("missing") in str(caught.value)


async def test_a_bad_redirect_location_is_shown_without_its_credentials(site: Site) -> None:
    """A Location that cannot be read is quoted in the error without its user name and
    password: they were kept in the input's record as the server wrote them."""
    site.routes["hop"] = redirect("http://bob:s3cret@[::1/x")
    with pytest.raises(FetchError) as caught:
        await http_fetch(site.url("hop"))
    assert str(caught.value) == f"bad redirect Location 'http://[::1/x' from {site.url('hop')}"


@pytest.mark.parametrize("uri", ["ftp://example.com/x", "http:///nohost", "not a url"])
async def test_http_fetcher_refuses_bad_urls(uri: str) -> None:
    """A URI that is not http(s)://host/... fails with a clear message."""
    with pytest.raises(FetchError, match="invalid URL"):
        await http_fetch(uri)


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("xn--zz.example", "punycode"),
        ("a..example", "label empty"),
        ("a" * 64 + ".example", "too long"),
    ],
)
async def test_a_host_name_idna_cannot_carry_fails_naming_the_url(
    site: Site, host: str, why: str
) -> None:
    """A host name with no IDNA form (bad punycode, an empty or 64-character label), given or
    redirected to, fails that input naming the URL, without the credentials: it was a
    UnicodeError out of the fetcher, recorded without the URL and logged as a fetcher bug."""
    site.routes["hop"] = redirect(f"http://{host}/doc")
    for url in (f"http://bob:s3cret@{host}/doc", site.url("hop")):
        with pytest.raises(FetchError) as caught:
            await http_fetch(url)
        message = str(caught.value)
        assert message.startswith(f"cannot fetch http://{host}/doc: bad host name '{host}' (")
        assert why in message and "s3cret" not in message


# --- file:// ---------------------------------------------------------------------------------


async def file_fetch(uri: str, roots: list[Path], max_bytes: int = MiB) -> bytes:
    fetcher = FileFetcher(make_config(file_roots=[str(r) for r in roots]))
    return await fetcher.fetch(uri, max_bytes)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/ (the allowed root) with a.txt, 'b c.txt', in-root and escaping symlinks; other/."""
    root, other = tmp_path / "root", tmp_path / "other"
    root.mkdir()
    other.mkdir()
    (root / "a.txt").write_bytes(b"alpha")
    (root / "b c.txt").write_bytes(b"spaced")
    (other / "secret").write_bytes(b"secret")
    (root / "inside").symlink_to(root / "a.txt")
    (root / "escape").symlink_to(other / "secret")
    return tmp_path


@pytest.mark.parametrize(
    ("name", "body"), [("a.txt", b"alpha"), ("b%20c.txt", b"spaced"), ("inside", b"alpha")]
)
async def test_file_reads_under_a_root(tree: Path, name: str, body: bytes) -> None:
    """A file (percent-decoded name, or a symlink that stays inside) under a root is read."""
    assert await file_fetch(f"file://{tree}/root/{name}", [tree / "root"]) == body


async def test_file_names_that_are_not_utf8_are_read_by_their_escapes(tree: Path) -> None:
    """%XX escapes are the bytes of the file's name, UTF-8 or not (as a file system may hold
    them): each file is read, never another name's "no such file"."""
    root = tree / "root"
    (root / "\u00e9.txt").write_bytes(b"utf-8 name")
    (root / os.fsdecode(b"\xff\xe9.txt")).write_bytes(b"latin-1 name")
    assert await file_fetch(f"file://{root}/%C3%A9.txt", [root]) == b"utf-8 name"
    assert await file_fetch(f"file://{root}/%FF%E9.txt", [root]) == b"latin-1 name"
    with pytest.raises(FetchError, match=f"no such file: {root}/\udcffnone.txt"):
        await file_fetch(f"file://{root}/%FFnone.txt", [root])


OUTSIDE = ["other/secret", "other/missing", "other/missing/deeper", "root/../other/secret"]
OUTSIDE += ["root/../other/missing", "root/escape", "root/dangling", "root/out/secret"]
OUTSIDE += ["root/out/missing", "root/loop", "nowhere/at/all"]


@pytest.mark.parametrize("path", OUTSIDE)
async def test_file_outside_the_roots_gets_one_refusal(tree: Path, path: str) -> None:
    """Every path outside the roots, directly, by '..' or through a symlink, existing or not,
    gets the same refusal, naming only the path asked for (never where a symlink leads)."""
    root = tree / "root"
    (root / "dangling").symlink_to(tree / "other" / "missing")
    (root / "out").symlink_to(tree / "other")
    (root / "loop").symlink_to(tree / "other" / "loop")
    (tree / "other" / "loop").symlink_to(root / "loop")
    with pytest.raises(FetchError) as refused:
        await file_fetch(f"file://{tree}/{path}", [root])
    assert str(refused.value) == (
        f"refused: {tree}/{path} is outside every root; file access is limited to SLUICE_FILE_ROOTS"
    )


async def test_a_directory_swapped_for_a_symlink_after_the_check_is_refused(tree: Path) -> None:
    """Another process swaps a directory under the root for a symlink out of it, again and
    again, while files in it are read: whatever the timing, nothing outside is ever read."""
    root = tree / "root"
    (root / "real").mkdir()
    (root / "real" / "f.txt").write_bytes(b"inside")
    (tree / "other" / "f.txt").write_bytes(b"secret")
    (root / "evil").symlink_to(tree / "other")
    stop = threading.Event()

    def swap() -> None:  # root/dir is the real directory, then the symlink, then ...
        while not stop.is_set():
            for name in ("real", "evil"):
                os.rename(root / name, root / "dir")
                os.rename(root / "dir", root / name)

    swapper = threading.Thread(target=swap)
    swapper.start()
    read: list[bytes] = []
    try:
        for _ in range(500):
            with contextlib.suppress(FetchError):  # mid-swap: missing, or refused
                read.append(await file_fetch(f"file://{root}/dir/f.txt", [root]))
    finally:
        stop.set()
        swapper.join()
    assert b"secret" not in read
    assert b"inside" in read  # the race was run: some reads got through the real directory


def test_opened_path_is_where_the_file_really_is(tree: Path) -> None:
    """The path the kernel gives for an open file follows every symlink on the way."""
    fd = os.open(tree / "root" / "escape", os.O_RDONLY)
    try:
        assert opened_path(fd) == (tree / "other" / "secret").resolve()
    finally:
        os.close(fd)


async def test_file_without_roots_is_refused(tree: Path) -> None:
    """With no SLUICE_FILE_ROOTS the file scheme refuses everything."""
    with pytest.raises(FetchError, match="file access is limited to SLUICE_FILE_ROOTS"):
        await file_fetch(f"file://{tree}/root/a.txt", [])


async def test_file_problems_name_the_path(tree: Path) -> None:
    """Missing files, directories, FIFOs and files over the limit fail naming the path."""
    root = tree / "root"
    os.mkfifo(root / "fifo")
    with pytest.raises(FetchError, match=f"no such file: {root}/missing"):
        await file_fetch(f"file://{root}/missing", [root])
    (root / "sub").mkdir()
    (root / "to-sub").symlink_to(root / "sub")
    with pytest.raises(FetchError, match=f"no such file: {root}/to-sub/missing"):
        await file_fetch(f"file://{root}/to-sub/missing", [root])
    with pytest.raises(FetchError, match=f"cannot read {root}/a.*: embedded null byte"):
        await file_fetch(f"file://{root}/a%00.txt", [root])
    for name in ("", "fifo"):  # a FIFO must fail at once, not block the thread
        with pytest.raises(FetchError, match=f"cannot read {root}/?{name}: not a regular file"):
            await file_fetch(f"file://{root}/{name}", [root])
    with pytest.raises(FetchError, match=rf"file {root}/a.txt is 5 bytes, over the limit of 4"):
        await file_fetch(f"file://{root}/a.txt", [root], max_bytes=4)


@pytest.mark.parametrize("uri", ["file://server/share/a.txt", "file:relative/a.txt"])
async def test_file_uri_must_be_a_local_absolute_path(tree: Path, uri: str) -> None:
    """Remote hosts and relative paths are refused."""
    with pytest.raises(FetchError, match="file URI"):
        await file_fetch(uri, [tree])


# --- data: -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "body"),
    [
        ("data:text/plain;base64,aGVsbG8gd29ybGQ=", b"hello world"),
        ("data:;base64,aGVsbG8gd29ybGQ", b"hello world"),  # padding is optional
        ("data:;base64,aGVs%0AbG8=", b"hello"),  # percent-encoded, whitespace ignored
        ("data:,a%20b%00%FF", b"a b\x00\xff"),
        ("data:text/plain;charset=utf-8,caf%C3%A9", "café".encode()),
        ("data:,", b""),
    ],
)
async def test_data_uris_decode(uri: str, body: bytes) -> None:
    """Base64 and percent-encoded data URIs decode to their bytes."""
    assert await DataFetcher().fetch(uri, MiB) == body


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("data:;base64,a*b=", "bad base64 in data URI"),
        ("data:;base64,aGVsbG8gd", "bad base64 in data URI"),
        ("data:text/plain", "no ',' before the data"),
        ("data:,12345", "data URI holds 5 bytes, over the limit of 4"),
    ],
)
async def test_bad_data_uris_fail(uri: str, message: str) -> None:
    """Malformed base64, a missing comma or too many bytes fail with a clear message."""
    with pytest.raises(FetchError, match=re.escape(message)):
        await DataFetcher().fetch(uri, 4)


@asynccontextmanager
async def raw_http(answers: dict[bytes, bytes]) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A server in the test's loop that answers each request path with the bytes given
    (any bytes: headers no HTTP library would write); its base URL, and the paths asked."""
    asked: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        path = (await reader.readline()).split(b" ")[1]
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        asked.append(path)
        writer.write(answers.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", asked
    finally:
        server.close()
        await server.wait_closed()


async def test_a_redirect_to_bytes_that_are_not_utf8_goes_where_it_says() -> None:
    """A Location with bytes that are not UTF-8 is followed with them percent-encoded, as a
    browser does: never to the URL left when they are dropped. In the host, it is refused."""
    found = b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n"
    async with raw_http(
        {
            b"/from": found % b"/t\xff\xfeo?q=\xe9",
            b"/t%FF%FEo?q=%E9": b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\narrived",
            b"/to": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nwrong",
            b"/host": found % b"http://\xff\xfe.example/x",
        }
    ) as (base, asked):
        assert await http_fetch(f"{base}/from") == b"arrived"
        assert asked == [b"/from", b"/t%FF%FEo?q=%E9"]
        with pytest.raises(FetchError, match=r"bad redirect Location 'http://\\udcff\\udcfe\."):
            await http_fetch(f"{base}/host")
