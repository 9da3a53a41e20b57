"""How times and durations read to people, in the CLI and the dashboard alike."""

from __future__ import annotations

from datetime import datetime


def format_time(epoch_s: float | None) -> str:
    if epoch_s is None:
        return "-"
    return datetime.fromtimestamp(epoch_s).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


DURATION_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def format_seconds(seconds: float | None, *, places: int = 2) -> str:
    """A duration in plain units: ``12.34 s`` under a minute (``places`` decimals), then the
    two largest units, rounded: ``1 min 52 s``, ``2 h 5 min``, ``3 d 4 h``."""
    if seconds is None:
        return "-"
    if round(seconds, places) < 60:
        return f"{seconds:.{places}f} s"
    left, parts = round(seconds), list[str]()
    for unit, size in DURATION_UNITS:
        count, left = divmod(left, size)
        if count or parts:
            parts.append(f"{count} {unit}")
    return " ".join(parts[:2])
