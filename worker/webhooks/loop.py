"""The worker's delivery loop: claim due webhooks, POST each signed, settle it.

Up to CONNECTIONS deliveries are sent at once; a claim takes no more than the room left.
Idle, the loop looks for due deliveries every POLL_S at first, then less often, up to every
POLL_MAX_S (an idle fleet's Redis pays a call a second per worker, not five). At shutdown the
loop claims nothing more and the POSTs in flight finish and are recorded, within what is left
of SLUICE_SHUTDOWN_GRACE_S (a POST's own timeout bounds each); those still out then are
dropped: their leases lapse and a live worker sends them again (at least once).
"""

from __future__ import annotations

import asyncio
import time

import structlog
from redis.exceptions import RedisError

from producer.contract.callbacks import callback_url_problem
from producer.contract.keys import Keys
from producer.redis.typed import Redis
from worker.errors import described
from worker.fetchers.ssrf import AddressPolicy
from worker.observe import metrics
from worker.settings import WorkerConfig
from worker.webhooks import schedule, signing
from worker.webhooks.default import DefaultUrl
from worker.webhooks.sender import CONNECTIONS, Answer, Sender
from worker.webhooks.store import Claimed, DeliveryStore, Settled

log = structlog.get_logger("sluice.webhooks")

POLL_S = 0.2
POLL_MAX_S = 1.0
# A claim's lease: twice the POST's timeout (which bounds the POST) and this slack, for the
# settle's write and a busy event loop; past it, another worker sends the ending again.
LEASE_SLACK_S = 5.0
NO_SECRET = (
    "not sent: this worker has no SLUICE_WEBHOOK_SECRET to sign it with (set the same secret "
    "on every worker of the namespace)"
)
NO_URL = (
    "not sent: the job has no callback_url and the namespace no default (no live worker has "
    "SLUICE_WEBHOOK_URL)"
)


class Webhooks:
    def __init__(self, redis: Redis, keys: Keys, config: WorkerConfig) -> None:
        self.config = config
        lease_ms = int((2 * config.webhook_timeout_s + LEASE_SLACK_S) * 1000)
        self.store = DeliveryStore(redis, keys, lease_ms)
        self.default = DefaultUrl(redis, keys, config.webhook_url)
        secret = config.webhook_secret
        self.secret = None if secret is None else secret.get_secret_value().encode()
        self.sender = Sender(AddressPolicy.from_allow(config.fetch_allow), config.webhook_timeout_s)
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.default.publish()
        self._task = asyncio.create_task(self._run(), name="sluice-webhooks")

    async def stop(self, grace_s: float = 0.0, stop_now: asyncio.Event | None = None) -> None:
        """Claim nothing more; let the POSTs in flight end and settle for up to ``grace_s``
        (or until ``stop_now`` is set), then drop the rest: a receiver that got a POST is
        not sent it again by another worker once its lease lapses."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._sending and grace_s > 0:
            log.info("webhooks in flight: letting them end", deliveries=len(self._sending))
            await _wait_for(set(self._sending), grace_s, stop_now)
        left = list(self._sending)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        self._sending = set()
        await self.sender.close()

    async def _run(self) -> None:
        pause = POLL_S
        while True:
            try:
                await self.default.refresh()
                room = CONNECTIONS - len(self._sending)
                claimed = await self.store.claim(room) if room > 0 else []
            except (RedisError, OSError, ValueError) as exc:  # the loop goes on, whatever
                log.warning("cannot claim webhooks", error=str(exc))
                claimed = []
            for claim in claimed:
                task = asyncio.create_task(self._deliver(claim), name="sluice-webhook")
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)
            if claimed:
                pause = POLL_S
            else:
                await asyncio.sleep(pause)
                pause = min(pause * 2, POLL_MAX_S)

    async def _deliver(self, claim: Claimed) -> None:
        cfg = self.config
        if claim.attempt > cfg.webhook_max_attempts:  # its earlier attempts never settled
            tried = claim.attempt - 1
            answer = Answer(Settled.FAILED, f"gave up: {tried} attempts ended with no answer")
        else:
            try:
                answer = await self._send(claim)
            except Exception as exc:  # e.g. a URL in the hash yarl cannot read: this one fails
                answer = Answer(Settled.FAILED, f"not sent: {described(exc)}")
        step = schedule.after(
            answer, claim.attempt, cfg.webhook_max_attempts, cfg.webhook_backoff_s
        )
        try:
            written = await self.store.settle(claim, step.settled, step.error, step.delay_ms)
        except RedisError as exc:  # its lease lapses: sent again, at least once
            log.warning("cannot record a webhook delivery", job_id=claim.job_id, error=str(exc))
            return
        if written:
            metrics.WEBHOOK_DELIVERIES.labels(_outcome(step.settled)).inc()
            log.info(
                "webhook",
                job_id=claim.job_id,
                outcome=step.settled.value,
                attempt=claim.attempt,
                error=step.error or None,
            )

    async def _send(self, claim: Claimed) -> Answer:
        if not claim.url:
            return Answer(Settled.FAILED, NO_URL)
        if self.secret is None:
            return Answer(Settled.FAILED, NO_SECRET)
        problem = callback_url_problem(claim.url)  # anyone may write the hash: checked again
        if problem is not None:
            return Answer(Settled.FAILED, f"not sent: the webhook URL {problem}")
        body = signing.payload(claim.job_id, claim.fields, claim.attempt)
        delivery = signing.delivery_id(claim.job_id, claim.fields)
        headers = signing.headers(self.secret, int(time.time()), body, delivery)
        return await self.sender.post(claim.url, body, headers)


async def _wait_for(
    tasks: set[asyncio.Task[None]], timeout_s: float, stop_now: asyncio.Event | None
) -> None:
    """Until every task is done, ``stop_now`` is set, or ``timeout_s`` has passed."""
    waits: set[asyncio.Task[object]] = {asyncio.create_task(asyncio.wait(tasks))}
    if stop_now is not None:
        waits.add(asyncio.create_task(stop_now.wait()))
    _, pending = await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    for wait in pending:
        wait.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _outcome(settled: Settled) -> str:
    return "retried" if settled is Settled.RETRY else settled.value
