"""The dashboard's action beyond `Client`'s own: retry every failed job."""

from __future__ import annotations

from dataclasses import dataclass, field

from producer.client.client import Client
from producer.client.stored_ids import is_valid_id, shown_id
from producer.contract.errors import SluiceError

RETRY_ALL_MAX = 1000  # jobs one "retry all" re-queues at most


@dataclass
class RetryAll:
    """What "retry all" did: the jobs re-queued, and why the others were not."""

    retried: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"retried": self.retried, "errors": self.errors}


async def retry_all(client: Client, limit: int = RETRY_ALL_MAX) -> RetryAll:
    """Re-queue the jobs in the failed set, most recent first, up to ``limit``."""
    outcome = RetryAll()
    ids = await client.failed_ids(limit)
    for raw in ids:
        job_id = shown_id(raw)
        if not is_valid_id(job_id):  # written raw: no action can name it
            outcome.errors[job_id] = "not a valid job id; remove it with Redis commands"
            continue
        try:
            await client.retry(job_id)
        except SluiceError as exc:
            outcome.errors[job_id] = str(exc)
        else:
            outcome.retried.append(job_id)
    return outcome
