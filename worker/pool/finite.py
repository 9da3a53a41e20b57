"""Finding the number JSON cannot carry in a transform's result: orjson writes NaN and
±Infinity as ``null`` without a word, so a result holding one would be stored changed."""

from __future__ import annotations

import math
from typing import Any, cast


def non_finite(value: object, where: str = "result") -> str | None:
    """Where in ``value`` (dicts, lists and tuples, as orjson encodes them) the first float
    that is NaN or infinite is, and what it is, e.g. ``result.scores[2] is nan``; or None.
    Types are read with type(), and values with the base classes' own methods: a subclass
    may override anything."""
    todo: list[tuple[str, object]] = [(where, value)]
    while todo:
        path, item = todo.pop()
        kind = type(item)
        if issubclass(kind, float):
            number = float.__float__(cast(float, item))
            if not math.isfinite(number):
                return f"{path} is {number!r}"
        elif issubclass(kind, dict):
            pairs = list(dict.items(cast(dict[Any, Any], item)))
            todo.extend((f"{path}.{key}", inner) for key, inner in reversed(pairs))
        elif issubclass(kind, list | tuple):
            inners = list(cast(list[Any], item))
            todo.extend((f"{path}[{i}]", inner) for i, inner in reversed(list(enumerate(inners))))
    return None
