"""How one attempt at one unit ended: one type per way, not strings, ints or exceptions."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Done:
    """Every input of the unit has its record (the last unit's ending may complete the job)."""


@dataclass(frozen=True, slots=True)
class Failed:
    """The job cannot run, or gave up: the whole job fails with this error."""

    error: str


@dataclass(frozen=True, slots=True)
class RetryLater:
    """An unexpected error: the unit runs again after ``delay_s`` (its try counts)."""

    error: str
    delay_s: float


@dataclass(frozen=True, slots=True)
class HandedBack:
    """Stopped before it was done (shutdown): any worker may take it at once; a drain does not
    count the try (``undo_try``)."""

    undo_try: bool


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The job was cancelled while this unit ran: nothing more is written for it."""


@dataclass(frozen=True, slots=True)
class LeaseLost:
    """Another worker holds the unit now (or nobody may): nothing more is written for it."""


Outcome = Done | Failed | RetryLater | HandedBack | Cancelled | LeaseLost

# the metric label of each outcome (sluice_units_finished_total)
LABELS: dict[type, str] = {
    Done: "done",
    Failed: "failed",
    RetryLater: "retried",
    HandedBack: "handed_back",
    Cancelled: "cancelled",
    LeaseLost: "lease_lost",
}
