"""What a webhook sends: the JSON body of a job's ending, and its signature.

The signature is an HMAC-SHA256, keyed with SLUICE_WEBHOOK_SECRET, of ``"{timestamp}.{body}"``
(the timestamp in epoch seconds, also sent as X-Sluice-Timestamp), so a receiver can refuse
a body that was changed and a request replayed long after it was signed (docs/webhooks.md).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from producer.contract.models import JobStatus
from producer.contract.status import Field
from producer.contract.version import sluice_version
from producer.contract.wire import dumps, read_number, status_from_hash

SIGNATURE_HEADER = "X-Sluice-Signature"
TIMESTAMP_HEADER = "X-Sluice-Timestamp"
DELIVERY_HEADER = "X-Sluice-Delivery"
COUNTS = ("total", "fetched", "transformed", "stored", "failed")


def delivery_id(job_id: str, fields: Mapping[str, str]) -> str:
    """The ending's id, the same on every attempt and new for each run of the job: a
    receiver drops a repeat of one it has handled (delivery is at least once)."""
    return f"{job_id}.{read_number(fields.get(Field.RUN)) or 1}"


def payload(job_id: str, fields: Mapping[str, str], attempt: int) -> bytes:
    """The JSON body for the job's ending, as its status hash tells it."""
    status: JobStatus = status_from_hash(job_id, fields)
    return dumps(
        {
            "delivery": delivery_id(job_id, fields),
            "attempt": attempt,
            "job_id": job_id,
            "state": status.state.value,
            "pipeline": status.pipeline,
            "queue": status.queue,
            "counts": {name: getattr(status, name) for name in COUNTS},
            "error": status.error,
            "enqueued_at": status.enqueued_at,
            "started_at": status.started_at,
            "finished_at": status.finished_at,
        }
    )


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The X-Sluice-Signature value: ``sha256=`` and the hex HMAC of ``{timestamp}.{body}``."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def headers(secret: bytes, timestamp: int, body: bytes, delivery: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": f"sluice/{sluice_version()}",
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        TIMESTAMP_HEADER: str(timestamp),
        DELIVERY_HEADER: delivery,
    }
