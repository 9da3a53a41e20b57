"""The transforms every system runs, as plain functions of the standard library alone.

Shared by all five systems (Sluice registers them in ``benchmarks.pipelines``; the Celery
venv imports this module directly), so each system does exactly the same work per input.
``text_stats`` is a copy of Sluice's built-in ``text-stats`` transform (the harness checks
they agree before it runs anything), since the Celery venv cannot import ``worker``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

Transform = Callable[[bytes, Mapping[str, Any]], dict[str, Any]]

WORD = re.compile(r"\w+")
TOP_TERMS = 10
# Iterations of the cpu-heavy loop: 1-2x this, by input; about 50-100 ms on the 2-core box.
CPU_BURN_BASE = 300_000


def text_stats(data: bytes, options: Mapping[str, Any]) -> dict[str, Any]:
    """Byte count, SHA-256, word counts and the 10 most common words (Sluice's text-stats)."""
    matches = Counter(WORD.findall(data.decode("utf-8", errors="replace")))
    terms: Counter[str] = Counter()
    for word, count in matches.items():
        terms[word.lower()] += count
    return {
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "words": matches.total(),
        "unique_words": len(terms),
        "top_terms": [[term, count] for term, count in terms.most_common(TOP_TERMS)],
    }


def cpu_burn(data: bytes, options: Mapping[str, Any]) -> dict[str, Any]:
    """Pure-Python arithmetic for 1-2x CPU_BURN_BASE iterations (set by the input's hash)."""
    seed = int.from_bytes(hashlib.sha256(data).digest()[:8], "big")
    rounds = CPU_BURN_BASE + seed % CPU_BURN_BASE
    x = seed & 0xFFFFFFFF
    for _ in range(rounds):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    return {"bytes": len(data), "rounds": rounds, "value": x}


def trivial(data: bytes, options: Mapping[str, Any]) -> dict[str, Any]:
    """Almost nothing: the size of the input."""
    return {"bytes": len(data)}


TRANSFORMS: dict[str, Transform] = {
    "text-stats": text_stats,
    "cpu": cpu_burn,
    "trivial": trivial,
}


def decode_data_uri(uri: str) -> bytes:
    """The bytes of an RFC 2397 ``data:`` URI (base64 or percent-encoded)."""
    header, sep, payload = uri.partition(",")
    if not sep or not header.lower().startswith("data:"):
        raise ValueError(f"not a data URI: {uri[:40]!r}")
    if header.lower().endswith(";base64"):
        return base64.b64decode(payload)
    return unquote_to_bytes(payload)
