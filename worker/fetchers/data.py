"""The data fetcher: RFC 2397 ``data:[<mediatype>][;base64],<data>`` URIs, decoded in place."""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote_to_bytes

from worker.errors import FetchError
from worker.registry import fetcher
from worker.settings import WorkerConfig

_WHITESPACE = re.compile(rb"[ \t\n\f\r]")


def decode_data_uri(uri: str) -> bytes:
    """The bytes a data URI carries, or FetchError saying what is malformed."""
    scheme, _, rest = uri.partition(":")
    if scheme.lower() != "data":
        raise FetchError(f"not a data URI: {uri[:40]!r}")
    header, comma, payload = rest.partition(",")
    if not comma:
        raise FetchError("malformed data URI: no ',' before the data")
    raw = unquote_to_bytes(payload)
    if not header.lower().endswith(";base64"):
        return raw
    return _forgiving_b64decode(raw)


def _forgiving_b64decode(raw: bytes) -> bytes:
    """Base64 as browsers read data URIs: whitespace ignored, padding optional, nothing else."""
    text = _WHITESPACE.sub(b"", raw).rstrip(b"=")
    if len(text) % 4 == 1:
        raise FetchError("bad base64 in data URI: the data has an impossible length")
    try:
        return base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FetchError(f"bad base64 in data URI: {exc}") from None


class DataFetcher:
    """Decodes ``data:`` URIs; nothing to connect to and nothing to close."""

    async def fetch(self, uri: str, max_bytes: int) -> bytes:
        data = decode_data_uri(uri)
        if len(data) > max_bytes:
            raise FetchError(f"data URI holds {len(data)} bytes, over the limit of {max_bytes}")
        return data

    async def close(self) -> None:
        return None


@fetcher("data")
def data_fetcher(config: WorkerConfig) -> DataFetcher:
    """The data fetcher (needs no settings)."""
    return DataFetcher()
