"""The http/https fetcher: streamed, size-limited, retried, and refused non-public addresses.

Redirects are followed here rather than by aiohttp, so that an IP-literal Location (which
aiohttp connects to without resolving) passes the address guard too.
"""

from __future__ import annotations

import re
from http import HTTPStatus

import aiohttp
from yarl import URL

from producer.contract.redaction import without_user_info
from worker.errors import FetchError
from worker.fetchers.rate import before_request
from worker.fetchers.retry import Transient, parse_retry_after, with_retries
from worker.fetchers.session import GuardedSession
from worker.fetchers.ssrf import AddressPolicy, RefusedDestination
from worker.registry import fetcher
from worker.settings import WorkerConfig

CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 10
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# what aiohttp decompresses (as it matches the header); any other coding it passes on as sent
DECODED = frozenset({"gzip", "deflate", "br", "zstd"})
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # a byte of a header that is not UTF-8


def shown(url: URL) -> str:
    """The URL as it may appear in a message: without user name or password."""
    return str(url.with_user(None)) if url.absolute else str(url)


def _scrub(text: str, url: URL) -> str:
    """``text`` (e.g. an aiohttp error naming the URL) with the URL's user info removed."""
    if url.raw_user is None and url.raw_password is None:
        return text
    text = text.replace(str(url), shown(url))
    for user, password in ((url.raw_user, url.raw_password), (url.user, url.password)):
        text = text.replace(f"{user or ''}:{password}@", "").replace(f"{user or ''}@", "")
    return text


class HttpFetcher:
    """One session for every fetch (`worker.fetchers.session`), through the address guard."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.policy = AddressPolicy.from_allow(config.fetch_allow)
        timeout = aiohttp.ClientTimeout(
            total=config.fetch_timeout_s, connect=config.fetch_connect_timeout_s
        )
        self._session = GuardedSession(
            self.policy, timeout, config.fetch_concurrency, config.fetch_per_host
        )

    def _client(self) -> aiohttp.ClientSession:
        return self._session.get()

    async def fetch(self, uri: str, max_bytes: int) -> bytes:
        try:
            url = URL(uri)
        except (ValueError, TypeError) as exc:
            raise FetchError(f"invalid URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.raw_host:
            raise FetchError(f"invalid URL {shown(url)}: expected http(s)://host/...")
        return await with_retries(
            lambda: self._follow(url, max_bytes),
            self.config.fetch_retries,
            self.config.fetch_backoff_s,
        )

    async def _follow(self, url: URL, max_bytes: int) -> bytes:
        """Fetch ``url``, following redirects; every hop is checked by the address guard."""
        for hop in range(MAX_REDIRECTS + 1):
            try:
                host = url.host or ""  # decoded from IDNA: 'xn--zz.com' has no decoding
            except UnicodeError as exc:
                raise _bad_host(url, exc) from None
            try:
                self.policy.check_literal(host)
                await before_request(url.raw_host or "")  # under a rate limit: waits its turn
                body, location = await self._get(url, max_bytes)
            except RefusedDestination as exc:
                if hop == 0:  # the input's own URL: its record names it
                    raise
                raise RefusedDestination(f"{exc}, redirected to {shown(url)}") from None
            if location is None:
                return body
            url = location
        raise FetchError(f"too many redirects (more than {MAX_REDIRECTS}) from {shown(url)}")

    async def _get(self, url: URL, max_bytes: int) -> tuple[bytes, URL | None]:
        """One request: the body, or where it redirects to."""
        try:
            async with self._client().get(url, allow_redirects=False) as resp:
                if resp.status in REDIRECTS and "Location" in resp.headers:
                    return b"", _redirect_target(url, resp.headers["Location"])
                _check_status(resp, url)
                return await _read(resp, url, max_bytes), None
        except TimeoutError as exc:
            raise Transient(self._timed_out(exc, url)) from None
        except UnicodeError as exc:  # the resolver encodes the host in IDNA ('a..b' cannot be)
            raise _bad_host(url, exc) from None
        except aiohttp.ClientConnectorCertificateError as exc:
            # the same certificate fails the same way on every try: not worth a retry
            reason = getattr(exc.certificate_error, "verify_message", None) or exc.certificate_error
            raise FetchError(
                f"cannot fetch {shown(url)}: TLS certificate not trusted ({reason}); "
                "a private CA can be trusted with SSL_CERT_FILE"
            ) from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise Transient(f"cannot fetch {shown(url)}: {_scrub(str(exc), url)}") from None
        except aiohttp.ClientError as exc:
            detail = _scrub(str(exc), url) or type(exc).__name__
            raise FetchError(f"cannot fetch {shown(url)}: {detail}") from None

    def _timed_out(self, exc: TimeoutError, url: URL) -> str:
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            limit = self.config.fetch_connect_timeout_s
            return f"timed out connecting to {shown(url)} after {limit:g} s"
        return f"timed out after {self.config.fetch_timeout_s:g} s fetching {shown(url)}"

    async def close(self) -> None:
        await self._session.close()


def _bad_host(url: URL, exc: UnicodeError) -> FetchError:
    return FetchError(f"cannot fetch {shown(url)}: bad host name {url.raw_host!r} ({exc})")


def _redirect_target(url: URL, location: str) -> URL:
    # aiohttp reads header bytes that are not UTF-8 as lone surrogates, which yarl drops
    # (fetching another URL than the one sent): they go as the %XX a browser sends instead,
    # and a host name with such bytes is refused (no host name has them)
    escaped = _NOT_UTF8.sub(lambda byte: f"%{ord(byte[0]) - 0xDC00:02X}", location)
    try:
        target = url.join(URL(escaped))
        if "%" in (target.raw_host or ""):
            raise ValueError("bytes that are not UTF-8 in its host")
    except (ValueError, TypeError):
        written = without_user_info(location)[:200]  # credentials never shown
        raise FetchError(f"bad redirect Location {written!r} from {shown(url)}") from None
    if target.scheme not in ("http", "https") or not target.raw_host:
        raise FetchError(f"redirect to unsupported URL {shown(target)} from {shown(url)}")
    return target


def _check_status(resp: aiohttp.ClientResponse, url: URL) -> None:
    if 200 <= resp.status < 300:
        return
    reason = resp.reason or _phrase(resp.status)
    status = f"{resp.status} {reason}" if reason else str(resp.status)
    message = f"HTTP {status} from {shown(url)}"
    if resp.status == 429 or resp.status >= 500:
        raise Transient(message, parse_retry_after(resp.headers.get("Retry-After")))
    raise FetchError(message)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


async def _read(resp: aiohttp.ClientResponse, url: URL, max_bytes: int) -> bytes:
    """The body, decompressed as it streams; refused as soon as it passes ``max_bytes``."""
    coding = resp.headers.get("Content-Encoding", "")
    known = coding.isascii() and coding.lower() in DECODED | {"", "identity"}
    if not known:
        raise FetchError(
            f"cannot fetch {shown(url)}: unsupported Content-Encoding {coding[:100]!r} "
            f"(decoded: {', '.join(sorted(DECODED))})"
        )
    declared = resp.content_length
    if declared is not None and declared > max_bytes:
        raise FetchError(
            f"response body of {declared} bytes (Content-Length) is over the limit of "
            f"{max_bytes} bytes from {shown(url)}"
        )
    if declared is not None and not resp.headers.get("Content-Encoding"):
        # the size is known and nothing inflates it: read it whole (one copy, no chunk loop);
        # aiohttp stops at Content-Length, so the check above bounds it
        return await resp.read()
    body = bytearray()
    async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
        body += chunk
        if len(body) > max_bytes:
            raise FetchError(f"response body over the limit of {max_bytes} bytes from {shown(url)}")
    return bytes(body)


@fetcher("http", "https")
def http_fetcher(config: WorkerConfig) -> HttpFetcher:
    """The http and https fetcher (one session shared by both schemes)."""
    return HttpFetcher(config)
