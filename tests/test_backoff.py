"""The one retry policy (`producer.redis.backoff`): pauses that double up to a cap, with
jitter where many clients retry at once, and a deadline for one operation's tries."""

from __future__ import annotations

from producer.redis.backoff import Backoff, delay_s, jittered_s


def test_pauses_double_up_to_the_cap() -> None:
    """The first pause is the first delay; each later one twice the last, never past the cap."""
    assert [delay_s(n, 0.1, 1.0) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_a_retry_that_never_stops_never_overflows() -> None:
    """However many tries (a listener retrying for the life of a process), the pause is the cap."""
    assert delay_s(100_000, 0.1, 5.0) == 5.0


def test_jitter_keeps_each_pause_between_half_and_all_of_its_delay() -> None:
    """A jittered pause lies between half and all of the doubled delay, capped the same."""
    pauses = [jittered_s(3, 0.1, 30.0) for _ in range(200)]
    assert all(0.2 <= p <= 0.4 for p in pauses) and len(set(pauses)) > 1
    assert all(jittered_s(20, 0.1, 1.0) <= 1.0 for _ in range(100))


async def test_backoff_paces_tries_and_says_when_its_deadline_is_past() -> None:
    """Each pause doubles the next; with no time left before the deadline, it is expired."""
    backoff = Backoff(60.0, first_s=0.001, max_s=0.004)
    delays = []
    for _ in range(4):
        delays.append(backoff.delay)
        await backoff.pause()
    assert delays == [0.001, 0.002, 0.004, 0.004]
    assert not backoff.expired()
    assert Backoff(0.0, first_s=0.001, max_s=1.0).expired()
    assert not Backoff(None, first_s=1e6, max_s=1e6).expired()
