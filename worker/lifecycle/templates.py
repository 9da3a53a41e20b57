"""Key names for Lua scripts that build a job's keys themselves (many jobs a call).

A script gets each key as a (prefix, suffix) pair around the job id, made from
`producer.contract.keys.Keys` itself, so that module stays the one place that spells a key.
"""

from __future__ import annotations

from collections.abc import Callable

MARK = "\x00"  # stands for the job id while a key is split into its prefix and suffix


class KeyTemplates:
    def __init__(self, *keys: Callable[[str], str]) -> None:
        self.args: list[str] = [part for key in keys for part in _split(key(MARK))]


def _split(key: str) -> tuple[str, str]:
    prefix, mark, suffix = key.partition(MARK)
    assert mark, f"key {key!r} does not hold the job id"
    return prefix, suffix
