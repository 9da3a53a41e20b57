"""Webhooks end to end: real workers POST each job's ending, signed, to a real local HTTP
server that checks the signature; retries, refusals and the address guard as documented."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from producer import Client, InvalidJob, JobState, JobStatus
from producer.contract.models import WebhookState
from producer.redis.typed import Redis
from tests.support.scrape import key, scrape
from tests.support.servers import free_port
from tests.support.webhook_receiver import HANG, Received, Reply, WebhookReceiver
from tests.support.workers import WorkerFactory
from worker.webhooks.default import DIFFERENT

SECRET = "s3cret-for-the-tests-only"
FAST = {"webhook_secret": SECRET, "webhook_backoff_s": 0.1}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    srv = WebhookReceiver(secret=SECRET).start()
    yield srv
    srv.stop()


async def until(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def settled(client: Client, job_id: str, timeout_s: float = 20.0) -> JobStatus:
    """The job's status once its webhook is delivered or failed."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = await client.status(job_id)
        hook = status.webhook
        if hook is not None and hook.state in (WebhookState.DELIVERED, WebhookState.FAILED):
            return status
        assert time.monotonic() < deadline, f"webhook not settled: {status.webhook}"
        await asyncio.sleep(0.05)


def only(receiver: WebhookReceiver, path: str) -> Received:
    posts = receiver.to(path)
    assert len(posts) == 1, posts
    return posts[0]


async def test_a_complete_job_is_posted_signed_and_its_status_says_delivered(
    client: Client, workers: WorkerFactory, receiver: WebhookReceiver
) -> None:
    """The POST carries the job's ending and a valid signature; the status shows delivery."""
    workers(**FAST)
    url = receiver.url("done")
    job_id = await client.enqueue("text-stats", ["data:,a b", "data:,c"], callback_url=url)
    status = await settled(client, job_id)
    post = only(receiver, "done")
    assert post.signed
    assert post.body["job_id"] == job_id
    assert post.body["state"] == "complete"
    assert post.body["pipeline"] == "text-stats"
    assert post.body["counts"]["stored"] == 2
    assert post.body["delivery"] == f"{job_id}.1" == post.headers["X-Sluice-Delivery"]
    assert post.body["attempt"] == 1
    assert post.body["finished_at"] == pytest.approx(status.finished_at)
    assert status.webhook is not None
    assert (status.webhook.url, status.webhook.state) == (url, WebhookState.DELIVERED)
    assert (status.webhook.attempts, status.webhook.error) == (1, None)
    assert status.webhook.at is not None


async def test_a_failed_job_is_posted_with_its_error(
    client: Client, workers: WorkerFactory, receiver: WebhookReceiver
) -> None:
    """A job that fails (here: past its timeout) is posted with state failed and its error."""
    workers(pipelines="tests.sample_pipelines", **FAST)
    job_id = await client.enqueue(
        "test-sleep",
        ["data:,x"],
        options={"seconds": 3},
        timeout_s=0.3,
        callback_url=receiver.url("failed"),
    )
    status = await settled(client, job_id)
    post = only(receiver, "failed")
    assert status.state == JobState.FAILED
    assert post.signed
    assert (post.body["state"], post.body["error"]) == ("failed", status.error)
    assert post.body["error"]


async def test_a_cancel_is_posted_and_a_retry_posts_the_next_ending_afresh(
    client: Client, workers: WorkerFactory, receiver: WebhookReceiver
) -> None:
    """Cancelling a deferred job posts 'cancelled'; after a retry, its completion is posted
    again under a new delivery id."""
    worker = workers(**FAST)
    url = receiver.url("cancel")
    job_id = await client.enqueue("text-stats", ["data:,x"], defer_s=600, callback_url=url)
    assert await client.cancel(job_id)
    await settled(client, job_id)
    assert only(receiver, "cancel").body["state"] == "cancelled"
    worker.stop()  # so that the reset is seen before the next run ends
    await client.retry(job_id)
    reset = (await client.status(job_id)).webhook
    assert reset is not None and (reset.url, reset.state, reset.attempts) == (url, None, 0)
    workers(**FAST)
    await client.wait(job_id, timeout_s=20)
    await until(lambda: len(receiver.to("cancel")) == 2)
    second = receiver.to("cancel")[1]
    assert (second.body["state"], second.body["delivery"]) == ("complete", f"{job_id}.2")
    again = (await settled(client, job_id)).webhook
    assert again is not None and again.attempts == 1


async def test_retrying_failed_inputs_delivers_the_next_ending_afresh(
    client: Client, workers: WorkerFactory, receiver: WebhookReceiver
) -> None:
    """A complete job with failed inputs is posted; `retry --failed-inputs` resets the
    delivery, and the next completion is posted under the run's new delivery id."""
    worker = workers(pipelines="tests.sample_pipelines", **FAST)
    url = receiver.url("inputs")
    job_id = await client.enqueue("test-raise", ["data:,ok", "data:,bad"], callback_url=url)
    first = await settled(client, job_id)
    assert (first.state, first.failed) == (JobState.COMPLETE, 1)
    worker.stop()  # so that the reset is seen before the next run ends
    assert await client.retry(job_id, failed_inputs=True) == 1
    reset = (await client.status(job_id)).webhook
    assert reset is not None and (reset.state, reset.attempts, reset.at) == (None, 0, None)
    workers(pipelines="tests.sample_pipelines", **FAST)
    await until(lambda: len(receiver.to("inputs")) == 2)
    posts = receiver.to("inputs")
    assert [p.body["delivery"] for p in posts] == [f"{job_id}.1", f"{job_id}.2"]
    assert [p.body["counts"]["failed"] for p in posts] == [1, 1]


async def test_the_namespace_default_gets_jobs_without_a_callback_url(
    client: Client, workers: WorkerFactory, receiver: WebhookReceiver
) -> None:
    """With SLUICE_WEBHOOK_URL on the worker, a job of no callback of its own is posted
    there, a producer's cancel too; a job with its own goes to its own only. A second worker
    saying another URL warns, and the first stays the default."""
    workers(webhook_url=receiver.url("default"), **FAST)
    plain = await client.enqueue("text-stats", ["data:,x"])
    own = await client.enqueue("text-stats", ["data:,y"], callback_url=receiver.url("own"))
    deferred = await client.enqueue("text-stats", ["data:,z"], defer_s=600)
    assert await client.cancel(deferred)
    status = await settled(client, plain)
    await settled(client, own)
    await settled(client, deferred)
    posts = {p.body["job_id"]: p.body["state"] for p in receiver.to("default")}
    assert posts == {plain: "complete", deferred: "cancelled"}
    assert only(receiver, "own").body["job_id"] == own
    assert status.webhook is not None and status.webhook.url is None
    other = workers(webhook_url=receiver.url("other"), **FAST)
    assert other.events(DIFFERENT)
    later = await client.enqueue("text-stats", ["data:,w"])
    await settled(client, later)
    assert [p.body["job_id"] for p in receiver.to("default")][-1] == later
    assert receiver.to("other") == []


async def test_a_500_is_tried_again_then_delivered(
    client: Client, workers: WorkerFactory, receiver: WebhookReceiver
) -> None:
    """5xx and 429 are retried with backoff; the next 2xx delivers; the metrics count each
    attempt by outcome."""
    receiver.answers["flaky"] = [500, 429]
    port = free_port()
    workers(metrics_port=port, **FAST)
    job_id = await client.enqueue("text-stats", ["data:,x"], callback_url=receiver.url("flaky"))
    status = await settled(client, job_id)
    posts = receiver.to("flaky")
    assert [p.body["attempt"] for p in posts] == [1, 2, 3]
    assert {p.body["delivery"] for p in posts} == {f"{job_id}.1"}
    assert all(p.signed for p in posts)
    assert status.webhook is not None
    assert (status.webhook.state, status.webhook.attempts) == (WebhookState.DELIVERED, 3)
    samples = await scrape(port)
    counted = {
        outcome: samples[key("sluice_webhook_deliveries_total", outcome=outcome)]
        for outcome in ("delivered", "retried", "failed")
    }
    assert counted == {"delivered": 1, "retried": 2, "failed": 0}


async def test_a_4xx_fails_at_once_and_attempts_run_out(
    client: Client, workers: WorkerFactory, receiver: WebhookReceiver
) -> None:
    """A 404 is not tried again; a receiver that keeps answering 503 is given up on after
    SLUICE_WEBHOOK_MAX_ATTEMPTS."""
    receiver.answers["gone"] = [404]
    receiver.answers["down"] = [503] * 10
    workers(webhook_max_attempts=3, **FAST)
    gone = await client.enqueue("text-stats", ["data:,x"], callback_url=receiver.url("gone"))
    down = await client.enqueue("text-stats", ["data:,x"], callback_url=receiver.url("down"))
    first, second = await settled(client, gone), await settled(client, down)
    assert first.webhook is not None and second.webhook is not None
    assert (first.webhook.state, first.webhook.attempts) == (WebhookState.FAILED, 1)
    assert "HTTP 404" in (first.webhook.error or "")
    assert len(receiver.to("gone")) == 1
    assert (second.webhook.state, second.webhook.attempts) == (WebhookState.FAILED, 3)
    assert "gave up after 3 attempts" in (second.webhook.error or "")
    assert len(receiver.to("down")) == 3


async def test_a_private_address_is_refused_unless_allowed(
    client: Client, workers: WorkerFactory, receiver: WebhookReceiver
) -> None:
    """The fetcher's address guard applies: with no SLUICE_FETCH_ALLOW, loopback is refused
    and nothing is sent."""
    workers(fetch_allow="", **FAST)
    job_id = await client.enqueue("text-stats", ["data:,x"], callback_url=receiver.url("ssrf"))
    status = await settled(client, job_id)
    assert status.webhook is not None and status.webhook.state == WebhookState.FAILED
    assert "not a public address" in (status.webhook.error or "")
    assert "SLUICE_FETCH_ALLOW" in (status.webhook.error or "")
    assert receiver.to("ssrf") == []


async def test_without_a_secret_the_delivery_fails_saying_so(
    client: Client, workers: WorkerFactory, receiver: WebhookReceiver
) -> None:
    """A worker with no SLUICE_WEBHOOK_SECRET sends nothing unsigned: the status says why."""
    workers()
    job_id = await client.enqueue("text-stats", ["data:,x"], callback_url=receiver.url("nos"))
    status = await settled(client, job_id)
    assert status.webhook is not None and status.webhook.state == WebhookState.FAILED
    assert "SLUICE_WEBHOOK_SECRET" in (status.webhook.error or "")
    assert receiver.to("nos") == []


async def test_two_workers_post_each_ending_exactly_once(
    client: Client, workers: WorkerFactory, receiver: WebhookReceiver
) -> None:
    """Claims are leased: however many workers look, each ending is POSTed once."""
    workers.many(2, **FAST)
    url = receiver.url("many")
    ids = await client.enqueue_many("text-stats", [["data:,x"]] * 30, callback_url=url)
    for job_id in ids:
        await settled(client, job_id)
    await asyncio.sleep(0.5)  # a duplicate would arrive meanwhile
    posts = receiver.to("many")
    assert sorted(p.body["job_id"] for p in posts) == sorted(ids)
    assert all(p.signed for p in posts)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://example.com/hook", "must be an http:// or https:// URL"),
        ("https://user:pw@example.com/hook", "must not carry a user name or password"),
        ("https:///nohost", "has no host"),
        ("https://example.com/" + "a" * 2100, "over the limit of 2048"),
        ("https://example.com/a b", "without spaces"),
    ],
)
async def test_a_bad_callback_url_is_refused_at_enqueue(
    client: Client, url: str, problem: str
) -> None:
    """InvalidJob names callback_url and says what is wrong; nothing is enqueued."""
    with pytest.raises(InvalidJob) as refused:
        await client.enqueue("text-stats", ["data:,x"], callback_url=url)
    assert "callback_url" in str(refused.value)
    assert problem in str(refused.value)
    assert "pw@" not in str(refused.value)  # a credential is never repeated


async def test_an_unreadable_delivery_is_dropped_and_blocks_no_other(
    client: Client, workers: WorkerFactory, receiver: WebhookReceiver, redis: Redis
) -> None:
    """A due entry whose status hash Redis refuses to count in (written by another tool)
    leaves the set; the deliveries due with it go out."""
    keys = client.keys.for_job("bad")  # on a sharded layout, the shard of "bad"
    await redis.hset(keys.job("bad"), mapping={"webhook_state": "pending", "webhook_attempts": "x"})
    await redis.zadd(keys.webhooks, {"bad": 0})
    workers(**FAST)
    job_id = await client.enqueue("text-stats", ["data:,x"], callback_url=receiver.url("good"))
    await settled(client, job_id)
    assert only(receiver, "good").body["job_id"] == job_id
    assert await redis.zscore(keys.webhooks, "bad") is None


async def test_a_worker_killed_mid_post_leaves_the_ending_to_another(
    client: Client, workers: WorkerFactory, receiver: WebhookReceiver
) -> None:
    """SIGKILL while the receiver holds the POST: once the lease lapses (twice the timeout
    plus 5 s), another worker sends the same delivery again: at least once."""
    receiver.answers["crash"] = [HANG]
    first = workers(webhook_timeout_s=0.5, **FAST)
    job_id = await client.enqueue("text-stats", ["data:,x"], callback_url=receiver.url("crash"))
    await until(lambda: len(receiver.to("crash")) == 1)
    first.signal(signal.SIGKILL)
    first.wait()
    workers(webhook_timeout_s=0.5, **FAST)
    status = await settled(client, job_id, timeout_s=30)
    posts = receiver.to("crash")
    assert [p.body["attempt"] for p in posts] == [1, 2]
    assert {p.body["delivery"] for p in posts} == {f"{job_id}.1"}
    assert status.webhook is not None
    assert (status.webhook.state, status.webhook.attempts) == (WebhookState.DELIVERED, 2)


async def test_a_post_in_flight_at_sigterm_is_let_finish_and_recorded(
    client: Client, workers: WorkerFactory, receiver: WebhookReceiver
) -> None:
    """SIGTERM while the receiver holds its answer (~1 s): the worker claims nothing more,
    waits for the POST, records it delivered and exits 0; the receiver gets one POST."""
    receiver.answers["drain"] = [Reply(200, hold_s=1.0)]
    worker = workers(**FAST)
    job_id = await client.enqueue("text-stats", ["data:,x"], callback_url=receiver.url("drain"))
    await until(lambda: len(receiver.to("drain")) == 1)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    status = await client.status(job_id)
    assert status.webhook is not None
    assert (status.webhook.state, status.webhook.attempts) == (WebhookState.DELIVERED, 1)
    assert len(receiver.to("drain")) == 1


def _http_date_in(seconds: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


@pytest.mark.parametrize(
    "retry_after",
    # delay-seconds; an HTTP date 3 s after the answer (whole seconds: 2 s at least)
    ["2", lambda: _http_date_in(3)],
    ids=["seconds", "http-date"],
)
async def test_a_retry_after_longer_than_the_backoff_is_waited(
    client: Client,
    workers: WorkerFactory,
    receiver: WebhookReceiver,
    retry_after: str | Callable[[], str],
) -> None:
    """A 503 with Retry-After (2 s, or a date 2-3 s ahead) puts the next POST off at least
    that long, not the 0.1 s backoff; the next 200 delivers."""
    receiver.answers["later"] = [Reply(503, headers=(("Retry-After", retry_after),))]
    workers(**FAST)
    job_id = await client.enqueue("text-stats", ["data:,x"], callback_url=receiver.url("later"))
    status = await settled(client, job_id)
    first, second = receiver.to("later")
    assert second.at - first.at >= 1.9  # a lower bound: the rule promises no upper one
    assert status.webhook is not None
    assert (status.webhook.state, status.webhook.attempts) == (WebhookState.DELIVERED, 2)


async def test_a_garbage_retry_after_is_ignored(
    client: Client, workers: WorkerFactory, receiver: WebhookReceiver
) -> None:
    """A Retry-After that is neither seconds nor a date: the backoff alone sets the pause."""
    receiver.answers["junk"] = [Reply(503, headers=(("Retry-After", "soon-ish"),))]
    workers(**FAST)
    job_id = await client.enqueue("text-stats", ["data:,x"], callback_url=receiver.url("junk"))
    status = await settled(client, job_id)
    assert [p.body["attempt"] for p in receiver.to("junk")] == [1, 2]
    assert status.webhook is not None and status.webhook.state == WebhookState.DELIVERED


async def test_a_long_retry_after_is_kept_past_the_fetchers_cap(
    client: Client, workers: WorkerFactory, receiver: WebhookReceiver, redis: Redis
) -> None:
    """Retry-After: 120 puts the delivery off ~120 s (a delivery holds no slot meanwhile),
    not the 30 s a fetch would be held at most."""
    receiver.answers["long"] = [Reply(503, headers=(("Retry-After", "120"),))]
    workers(**FAST)
    job_id = await client.enqueue("text-stats", ["data:,x"], callback_url=receiver.url("long"))
    due: list[float] = []

    async def put_off() -> bool:
        status = await client.status(job_id)
        if status.webhook is None or status.webhook.attempts != 1 or status.webhook.error is None:
            return False
        due.append(await redis.zscore(client.keys.webhooks, job_id) or 0.0)
        return True

    deadline = time.monotonic() + 20
    while not await put_off():
        assert time.monotonic() < deadline, "the 503 was not recorded"
        await asyncio.sleep(0.05)
    seconds, _ = await redis.time()
    assert due[0] / 1000 - seconds >= 100
