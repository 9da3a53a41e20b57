"""One attempt at one claimed job: call the job function, then write how the attempt ended.

This takes the place of arq's ``Worker.run_job``, which spends two round trips of its own
per job (read + count the try, then a MULTI to finish) beside Sluice's status writes. Here
the claim has read the job and counted the try already, and the ending is one script call,
batched with every other job ending at the same moment (`worker.endings`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from arq.worker import Retry, RetryJob

from producer.wire import dumps, now_ms
from worker.claim import Claimed
from worker.endings import FinalStatus
from worker.envelope import load_envelope

if TYPE_CHECKING:
    from worker.arq_worker import SluiceWorker

log = structlog.get_logger("sluice.worker")


async def run_attempt(worker: SluiceWorker, claimed: Claimed) -> None:
    job_id = claimed.job_id
    envelope = load_envelope(claimed.envelope)  # never raises
    name, enqueued_ms = envelope["f"], envelope["et"]
    job_try = max(claimed.job_try, envelope["t"])
    start_ms = now_ms()

    def arq_result(ok: bool, result: object) -> bytes:
        # arq's result envelope, without the job's arguments (a job may carry many inputs)
        return dumps({
            "t": job_try, "f": name, "a": [], "k": {}, "et": enqueued_ms, "s": ok, "r": result,
            "st": start_ms, "ft": now_ms(), "q": worker.queue_name, "id": job_id,
        })  # fmt: skip

    try:
        ending = await _call(worker, claimed, envelope, job_try)
    finally:
        worker.job_tasks.pop(job_id, None)
    # a second cancel (stop at once) must not lose the ending: it is shielded in `endings`,
    # and written at shutdown if this task goes first; the lease is held until it is written
    with contextlib.suppress(asyncio.CancelledError):
        await _write(worker, job_id, ending, arq_result)
    worker.leases.held.discard(job_id)


async def _write(
    worker: SluiceWorker,
    job_id: str,
    ending: FinalStatus | int | str,
    arq_result: Callable[[bool, object], bytes],
) -> None:
    """Count the attempt's outcome as arq does, and write its ending."""
    endings = worker.endings
    if isinstance(ending, FinalStatus):
        if ending.failed:
            worker.jobs_failed += 1
        else:
            worker.jobs_complete += 1
        await endings.finish(job_id, ending, arq_result(not ending.failed, ending.summary()))
    elif ending == "aborted":
        worker.jobs_failed += 1
        await endings.finish(job_id, None, arq_result(False, {"state": "cancelled"}))
    elif isinstance(ending, int):
        worker.jobs_retried += 1
        await endings.retry(job_id, ending)
    else:
        worker.jobs_retried += 1
        await endings.hand_back(job_id, undo_try=worker.draining.is_set())


async def _call(
    worker: SluiceWorker, claimed: Claimed, envelope: dict[str, Any], job_try: int
) -> FinalStatus | int | str:
    """Run the job function; its final status, a retry's score increment, or a word:
    "aborted" (cancelled by `sluice cancel`) or "hand_back" (stopped, to run again)."""
    job_id, name = claimed.job_id, envelope["f"]
    function = worker.functions.get(name)
    if function is None:
        known = list(worker.functions)
        return FinalStatus.failure(f"job names function {name!r}; this worker runs {known}")
    max_tries = function.max_tries or worker.max_tries
    if job_try > max_tries:
        log.warning("job out of tries", job_id=job_id, tries=job_try - 1)
        return FinalStatus.failure(
            f"gave up after {max_tries} tries (SLUICE_MAX_TRIES): every attempt was cut off "
            "(its worker died or stopped)",
            spec=dumps(envelope["k"]),
        )
    ctx = {**worker.ctx, "job_id": job_id, "job_try": job_try, "score": claimed.score,
           "sluice_claim": claimed}  # fmt: skip
    task = asyncio.current_task()
    assert task is not None
    worker.job_tasks[job_id] = task  # arq's abort (`sluice cancel`) cancels it
    try:
        # no timeout here: the job function keeps its own (SLUICE_JOB_TIMEOUT_S) and says so
        result = await function.coroutine(ctx, *envelope["a"], **envelope["k"])
    except Retry as exc:
        return exc.defer_score + (now_ms() - claimed.score) if exc.defer_score else 0
    except RetryJob:
        return "hand_back"
    except asyncio.CancelledError:
        if job_id in worker.aborting_tasks:
            worker.aborting_tasks.discard(job_id)
            return "aborted"
        return "hand_back"
    except Exception as exc:  # a bug: the job function handles the errors it expects
        log.exception("job function raised", job_id=job_id)
        return FinalStatus.failure(f"{type(exc).__name__}: {exc}", spec=dumps(envelope["k"]))
    if not isinstance(result, FinalStatus):
        kind = type(result).__name__
        return FinalStatus.failure(f"job function returned {kind}, not a FinalStatus")
    return result
