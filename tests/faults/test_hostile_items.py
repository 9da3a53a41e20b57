"""Whatever one input's transform or fetcher raises or returns, that input fails alone with a
readable error in its record, and every other input and job goes on (real workers, with
tests/hostile_pipelines.py loaded)."""

from __future__ import annotations

import re

from producer import Client, ItemResult, JobState
from tests.expected import data_uri
from tests.hostile_pipelines import RAISES, RETURNS
from tests.support.workers import WorkerFactory

HOSTILE = "tests.hostile_pipelines"

# what each input's record says: its error (a regular expression), or its result
TRANSFORM_ERRORS = {
    "unprintable": r"UnprintableError: <unprintable UnprintableError>",
    "worse": r"WorseError: WorseError\(\)",
    "locked": r"LockedError: \('holds a lock', <unlocked _thread\.lock object at 0x\w+>\)",
    "local-str": r"LocalError: a message of a local str class",
    "surrogate": r"ValueError: bad byte \\udcff here",
    "long": r"ValueError: x{2000}… \(1000000 characters\)",
    "exit": r"SystemExit: 4",
    "interrupt": r"KeyboardInterrupt",
    "item-error": r"the page is a login form",
    "bare-item-error": r"TransformError",
    "transform-error": r"no faces found",
    "fetch-error": r"stale link",
    "none": r"transform returned NoneType, expected a dict or an Output",
    "list": r"transform returned list, expected a dict or an Output",
    "shape-shifter": r"transform returned ShapeShifter, expected a dict or an Output",
    "lock": r"result is not JSON-serialisable: Type is not JSON serializable: _thread\.lock",
    "set": r"result is not JSON-serialisable: Type is not JSON serializable: set",
    "int-keys": r"result is not JSON-serialisable: Dict key must be str",
    "big-int": r"result is not JSON-serialisable: Integer exceeds 64-bit range",
    "nan": r"result is not JSON-serialisable: result\.scores\[2\] is nan, not a JSON number",
    "infinity": r"result is not JSON-serialisable: result\.stats\.mean is -inf, not a JSON number",
    "recursive": r"result is not JSON-serialisable: Recursion limit reached",
    "deep": r"result is not JSON-serialisable: Recursion limit reached",
    "huge": r"result is 2000\d+ bytes, over the limit of 1000000 \(SLUICE_MAX_RESULT_BYTES\)",
    "output-types": r"Output\.result must be a dict, got list",
    "output-blob": r"Output\.blob must be bytes, got lock",
    "output-extension": r"Output\.extension must be a file extension such as 'png' .*, "
    r"got '\.\./\.\./etc/passwd'",
}
FETCH_ERRORS = {
    "unprintable": r"fetch failed: UnprintableError: <unprintable UnprintableError>",
    "surrogate": r"fetch failed: ValueError: bad byte \\udcff here",
    "exit": r"fetch failed: SystemExit: 4",
    "interrupt": r"fetch failed: KeyboardInterrupt",
    "cancelled": r"fetch failed: CancelledError",
    "item-error": r"the page is a login form",
    "bare-item-error": r"TransformError",
    "transform-error": r"no faces found",
    "fetch-error": r"stale link",
    "text": r"fetcher returned str, expected bytes",
    "none": r"fetcher returned NoneType, expected bytes",
    "number": r"fetcher returned int, expected bytes",
    "too-big": r"fetcher returned 1001 bytes, over the limit of 1000 bytes",
}


def errors_of(records: list[ItemResult], words: list[str]) -> dict[str, str | None]:
    return {word: record.error for word, record in zip(words, records, strict=True)}


def unmatched(errors: dict[str, str | None], expected: dict[str, str]) -> dict[str, object]:
    return {
        word: errors.get(word)
        for word, pattern in expected.items()
        if not re.fullmatch(pattern, errors.get(word) or "")
    }


async def finishes(client: Client, inputs: list[str]) -> tuple[str, list[ItemResult]]:
    """Enqueue a test-hostile job; it completes, with one record per input."""
    job_id = await client.enqueue("test-hostile", inputs)
    status = await client.wait(job_id, timeout_s=90)
    assert status.state == JobState.COMPLETE, status
    records = [r async for r in client.results(job_id)]
    assert len(records) == len(inputs)
    return job_id, records


async def test_every_broken_transform_fails_its_input_alone(
    client: Client, workers: WorkerFactory
) -> None:
    """Exceptions that cannot be shown or pickled, and outputs that cannot cross back or be
    stored, each fail their own input with a readable error; the rest of the job and later
    jobs are transformed."""
    workers(pipelines=HOSTILE, max_result_bytes=1_000_000, transform_attempts=1)
    assert set(TRANSFORM_ERRORS) | {"bytearray-blob", "job-failed"} == set(RAISES) | set(RETURNS)
    words = [w for word in [*TRANSFORM_ERRORS, "bytearray-blob"] for w in ("fine", word)]
    job_id, records = await finishes(client, [data_uri(w.encode()) for w in words])
    assert unmatched(errors_of(records, words), TRANSFORM_ERRORS) == {}
    fine = [r.result for w, r in zip(words, records, strict=True) if w == "fine"]
    assert fine == [{"echo": "fine"}] * (len(TRANSFORM_ERRORS) + 1)
    [blob] = [r for w, r in zip(words, records, strict=True) if w == "bytearray-blob"]
    assert (blob.ok, blob.result, blob.blob) == (True, {"ok": 1}, "bin")
    assert await client.blob(job_id, blob.index) == b"yes"
    _, after = await finishes(client, [data_uri(b"after")] * 3)
    assert [r.result for r in after] == [{"echo": "after"}] * 3


async def test_every_broken_fetch_fails_its_input_alone(
    client: Client, workers: WorkerFactory
) -> None:
    """A fetcher that raises anything (even CancelledError or SystemExit), or returns what is
    not bytes or is over the limit, fails that input alone; the stage goes on."""
    workers(pipelines=HOSTILE, max_fetch_bytes=1000)
    words = [w for word in [*FETCH_ERRORS, "bytearray", "memoryview"] for w in ("fine", word)]
    _, records = await finishes(client, [f"hostile:{w}" for w in words])
    assert unmatched(errors_of(records, words), FETCH_ERRORS) == {}
    ok = {w: r.result for w, r in zip(words, records, strict=True) if r.ok}
    assert ok == {w: {"echo": w} for w in ("fine", "bytearray", "memoryview")}
    _, after = await finishes(client, ["hostile:after"] * 3)
    assert [r.result for r in after] == [{"echo": "after"}] * 3


async def test_job_failed_from_a_transform_or_a_fetcher_fails_the_whole_job(
    client: Client, workers: WorkerFactory
) -> None:
    """JobFailed is the pipeline author's way to say the job cannot go on: its input's record
    holds the message, the job ends failed with it (into the failed set, not retried), and
    the worker goes on with the next job. Raised by a fetcher, the same."""
    workers(pipelines=HOSTILE, transform_batch_items=1)
    for inputs in (
        [data_uri(b"fine"), data_uri(b"job-failed"), data_uri(b"fine")],
        ["hostile:fine", "hostile:job-failed"],
    ):
        job_id = await client.enqueue("test-hostile", inputs)
        status = await client.wait(job_id, timeout_s=60)
        assert (status.state, status.error) == (
            JobState.FAILED,
            "the licence for this job has expired",
        )
        assert status.attempts == 1
        assert job_id in [s.job_id for s in await client.failed()]
    _, after = await finishes(client, [data_uri(b"after")])
    assert [r.result for r in after] == [{"echo": "after"}]
