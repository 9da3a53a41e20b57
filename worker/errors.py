"""Errors of the worker side, all derived from `producer.contract.errors.SluiceError`, and how any
exception becomes the message stored in an input's record.

SluiceError
├── ItemError            one input failed; its record carries the message
│   ├── FetchError       the input could not be fetched (bad URI, 404, timeout, too large)
│   └── TransformError   the transform raised, crashed, or returned something unstorable
└── JobFailed            a job cannot run at all (unknown pipeline, malformed payload)

Pipeline authors may raise them from a transform or a fetcher: any ItemError fails that
input with its message as written (other exceptions are shown as ``Type: message``);
JobFailed fails the input the same way and marks its whole job to fail with the message
(`worker.stages.items.JobRun.fatal`).
"""

from __future__ import annotations

from collections.abc import Callable

from producer.contract.errors import SluiceError

MAX_MESSAGE_CHARS = 2000  # an error in a record is read by people: keep it to a screenful


class ItemError(SluiceError):
    """One input failed; the job goes on with its other inputs. Raised from a transform or a
    fetcher, the input's record holds the message as written, without the type."""


class FetchError(ItemError):
    """An input could not be fetched; the message says why (status, timeout, size...)."""


class TransformError(ItemError):
    """A transform raised, crashed its process, or returned something that cannot be stored."""


class JobFailed(SluiceError):
    """A job cannot run at all; it is marked failed with this message and not retried.
    Raised from a transform or a fetcher, it fails that input with the message and marks the
    whole job to fail with it."""


def message_of(exc: BaseException) -> str:
    """``exc``'s message as a record can hold it, whatever the exception does: its str(), else
    its repr(), else a placeholder; valid UTF-8 and at most MAX_MESSAGE_CHARS. Never raises:
    an exception's ``__str__`` is other people's code, and may raise, loop on itself, return
    a str subclass that cannot be pickled or text that cannot be encoded."""
    text = _plain(str, exc)
    if text is None:
        text = _plain(repr, exc)
    return f"<unprintable {type_name(exc)}>" if text is None else text


def reason_of(exc: BaseException) -> str:
    """The message of an error a pipeline raised on purpose (ItemError, JobFailed) as written,
    or its type's name when it has none."""
    return message_of(exc) or type_name(exc)


def described(exc: BaseException) -> str:
    """``Type: message``, as an unexpected exception is shown in a record."""
    message = message_of(exc)
    return f"{type_name(exc)}: {message}" if message else type_name(exc)


def type_name(exc: BaseException) -> str:
    name = _plain(lambda e: type(e).__name__, exc)
    return name or "Exception"


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def _plain(show: Callable[[BaseException], object], exc: BaseException) -> str | None:
    """What ``show(exc)`` gives as a plain, clipped, encodable str; None if it fails."""
    try:
        shown = show(exc)
        if not isinstance(shown, str):
            return None
        # str.__str__ makes a str subclass (whose class the parent may not know) a plain str
        text = clip(str.__str__(shown))
        # lone surrogates (say, from bytes decoded with surrogateescape) cannot be stored
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    except Exception:
        return None
