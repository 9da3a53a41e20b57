"""Independent reference values for the built-in pipelines, straight from the spec."""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter
from typing import Any


def text_stats(data: bytes) -> dict[str, Any]:
    words = re.findall(r"\w+", data.decode("utf-8", errors="replace"))
    lower = [w.lower() for w in words]
    return {
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "words": len(words),
        "unique_words": len(set(lower)),
        "top_terms": [[t, c] for t, c in Counter(lower).most_common(10)],
    }


def data_uri(data: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(data).decode()
