"""The blocking client has everything the async one has, and the listing and removal calls
(`jobs`, `delete`, `purge_failed`) work on a real server with a real worker."""

from __future__ import annotations

import inspect

import pytest

from producer import (
    Client,
    ClientSettings,
    JobNotFound,
    JobState,
    SluiceError,
    SyncClient,
    WorkerInfo,
)
from producer.redis.typed import Redis
from tests.support.workers import WorkerFactory


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_sync_client_has_every_client_method_with_the_same_parameters() -> None:
    """Each public method of Client is on SyncClient, blocking, with the same parameters."""
    asynchronous, blocking = public_methods(Client), public_methods(SyncClient)
    assert sorted(set(asynchronous) - set(blocking)) == []
    for name, signature in asynchronous.items():
        assert list(blocking[name].parameters.values()) == list(signature.parameters.values())
        assert not inspect.iscoroutinefunction(getattr(SyncClient, name)), name
        assert not inspect.isasyncgenfunction(getattr(SyncClient, name)), name


def test_sync_client_steers_and_lists_jobs(
    settings: ClientSettings, workers: WorkerFactory
) -> None:
    """Blocking: workers and pipelines typed, cancel, jobs by state, delete, failed, purge."""
    worker = workers(max_tries=1)
    with SyncClient(settings) as client:
        [info] = client.workers()
        assert isinstance(info, WorkerInfo) and (info.pid, info.pool_size) == (worker.pid, 2)
        assert "text-stats" in client.pipelines()
        later = client.enqueue("text-stats", ["data:,later"], defer_s=3600)
        assert client.cancel(later) is True
        done = client.enqueue("text-stats", ["data:,done"])
        assert client.wait(done, timeout_s=60).state == JobState.COMPLETE
        assert [j.job_id for j in client.jobs(state="cancelled").jobs] == [later]
        assert {j.job_id for j in client.jobs().jobs} == {later, done}
        client.delete(later)
        assert client.status(later).state == JobState.NOT_FOUND
        with pytest.raises(JobNotFound, match=later):
            client.delete(later)
        assert client.failed() == []
        assert client.purge_failed() == 0


async def test_purge_failed_deletes_every_failed_job_and_nothing_else(
    client: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """Jobs that failed are deleted with their records; a complete job stays."""
    failing = [await client.enqueue("text-stats", [f"data:,{i}"]) for i in range(3)]
    for job_id in failing:  # every try of these errors
        await redis.set(client.keys.results(job_id), "not a hash")
    ok = await client.enqueue("text-stats", ["data:,fine"])
    workers(max_tries=1)
    for job_id in failing:
        assert (await client.wait(job_id, timeout_s=60)).state == JobState.FAILED
    assert (await client.wait(ok, timeout_s=60)).state == JobState.COMPLETE
    assert sorted(j.job_id for j in await client.failed()) == sorted(failing)

    assert await client.purge_failed() == 3
    assert await client.failed() == []
    for job_id in failing:
        assert (await client.status(job_id)).state == JobState.NOT_FOUND
        assert not await redis.exists(client.keys.job(job_id), client.keys.spec(job_id))
    assert (await client.status(ok)).state == JobState.COMPLETE


async def test_delete_refuses_a_live_job(client: Client) -> None:
    """A queued job is not deleted: the error says to cancel it first; it stays queued."""
    job_id = await client.enqueue("text-stats", ["data:,x"])
    with pytest.raises(SluiceError, match="cancel it before deleting it"):
        await client.delete(job_id)
    assert (await client.status(job_id)).state == JobState.QUEUED


async def test_jobs_filters_by_pipeline_and_search_and_refuses_a_bad_state(
    client: Client,
) -> None:
    """`jobs` filters by pipeline and id; an unknown state is a ValueError naming it."""
    text = await client.enqueue("text-stats", ["data:,a"], job_id="find-me-1")
    await client.enqueue("thumbnail", ["data:,b"], job_id="other-2")
    assert [j.job_id for j in (await client.jobs(pipeline="text-stats")).jobs] == [text]
    assert [j.job_id for j in (await client.jobs(search="FIND")).jobs] == [text]
    listed = await client.jobs(max_listed=1)
    assert (len(listed.jobs), listed.truncated) == (1, True)
    with pytest.raises(ValueError, match="'sleeping'"):
        await client.jobs(state="sleeping")


def test_worker_info_from_a_heartbeat_that_does_not_parse() -> None:
    """A heartbeat field that is not a number is left unset, never an error."""
    info = WorkerInfo.from_hash({"id": "w1", "pid": "abc", "jobs": "3", "started": "1.5"})
    assert (info.id, info.pid, info.jobs, info.started) == ("w1", None, 3, 1.5)
