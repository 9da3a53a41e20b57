"""`sluice enqueue --callback-url` and `sluice status`'s webhook row, with a real worker and
a real receiver."""

from __future__ import annotations

import json
import time

from producer import ClientSettings
from tests.cli.test_control import enqueue, sluice
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.workers import WorkerFactory

SECRET = "s3cret-for-the-cli-tests"


def test_enqueue_with_a_callback_url_and_status_shows_the_delivery(
    settings: ClientSettings, workers: WorkerFactory
) -> None:
    """The job's ending reaches the receiver, signed; `status` shows where and how it went,
    as a row and in --json."""
    receiver = WebhookReceiver(secret=SECRET).start()
    try:
        workers(webhook_secret=SECRET)
        url = receiver.url("cli")
        job_id = enqueue(settings, "text-stats", "data:,x", "--callback-url", url)
        deadline = time.monotonic() + 20
        while not receiver.to("cli") or _state(settings, job_id) != "delivered":
            assert time.monotonic() < deadline, receiver.received
            time.sleep(0.05)
        assert receiver.to("cli")[0].signed
        shown = sluice(settings, "status", job_id)
        row = next(line for line in shown.stdout.splitlines() if line.startswith("webhook"))
        assert url in row and "delivered, 1 attempt" in row
    finally:
        receiver.stop()


def test_a_bad_callback_url_is_refused_naming_it(settings: ClientSettings) -> None:
    """Exit 2... or 1 with the field named; nothing is enqueued."""
    result = sluice(settings, "enqueue", "text-stats", "data:,x", "--callback-url", "ftp://x/y")
    assert result.exit_code != 0
    assert "callback_url" in result.stderr and "http://" in result.stderr


def _state(settings: ClientSettings, job_id: str) -> str | None:
    status = json.loads(sluice(settings, "status", job_id, "--json").stdout)
    return (status.get("webhook") or {}).get("state")
