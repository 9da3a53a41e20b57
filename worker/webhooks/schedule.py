"""When a webhook that did not deliver is tried again: the one backoff policy of Sluice
(`producer.redis.backoff`), doubling from SLUICE_WEBHOOK_BACKOFF_S with jitter, up to
MAX_BACKOFF_S; a receiver's Retry-After wins where it asks for longer. After
SLUICE_WEBHOOK_MAX_ATTEMPTS POSTs the delivery fails."""

from __future__ import annotations

from typing import NamedTuple

from producer.redis.backoff import jittered_s
from worker.webhooks.sender import MAX_RETRY_AFTER_S, Answer
from worker.webhooks.store import Settled

MAX_BACKOFF_S = MAX_RETRY_AFTER_S  # a Retry-After may ask for as long as the backoff's cap


class Next(NamedTuple):
    """What becomes of a delivery after one attempt."""

    settled: Settled
    error: str
    delay_ms: int = 0  # with RETRY: due again this much later


def after(answer: Answer, attempt: int, max_attempts: int, first_s: float) -> Next:
    """The delivery's next step once attempt number ``attempt`` (from 1) answered ``answer``."""
    if answer.settled is not Settled.RETRY:
        return Next(answer.settled, answer.error)
    if attempt >= max_attempts:
        return Next(
            Settled.FAILED,
            f"{answer.error} (gave up after {attempt} attempts: SLUICE_WEBHOOK_MAX_ATTEMPTS)",
        )
    delay_s = max(jittered_s(attempt, first_s, MAX_BACKOFF_S), answer.retry_after_s or 0.0)
    return Next(Settled.RETRY, answer.error, int(min(delay_s, MAX_BACKOFF_S) * 1000))
