"""The text-stats pipeline: size, SHA-256, word counts and the most common words of a text."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from worker.registry import pipeline

WORD = re.compile(r"\w+")
TOP_TERMS = 10


class TextStatsOptions(BaseModel):
    """text-stats takes no options: any given is a mistake (a misspelling, another pipeline's)."""

    model_config = ConfigDict(extra="forbid")


@pipeline("text-stats", options=TextStatsOptions)
def text_stats(data: bytes, options: Mapping[str, Any]) -> dict[str, Any]:
    """Byte count, SHA-256, word counts and the 10 most common words of UTF-8 text."""
    matches = Counter(WORD.findall(data.decode("utf-8", errors="replace")))
    # Lower-case the distinct words, not the text: lowering can change what \w+ matches
    # (e.g. "İ" becomes "i" plus a combining dot), and there are far fewer distinct words.
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
