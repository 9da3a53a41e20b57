"""The dashboard's actions beyond `Client`'s own: delete a job, retry every failed job."""

from __future__ import annotations

from dataclasses import dataclass, field

from producer.client import Client
from producer.errors import JobNotFound, SluiceError
from producer.stored_ids import is_valid_id, shown_id

RETRY_ALL_MAX = 1000  # jobs one "retry all" re-queues at most

# Delete every key of a job that has ended; a job in the queue, leased by a worker or in the
# running set is refused, so a live job is never pulled from under its worker.
# KEYS: status, inputs, results, blobs, spec, queue, failed set, running set,
#       arq job, arq in-progress, arq result, arq retry
# ARGV: job id    Returns 1 deleted, 0 still live, -1 no such job.
DELETE = """
if redis.call('ZSCORE', KEYS[6], ARGV[1]) or redis.call('EXISTS', KEYS[10]) == 1
   or redis.call('SISMEMBER', KEYS[8], ARGV[1]) == 1 then
  return 0
end
local found = redis.call('ZREM', KEYS[7], ARGV[1])
found = found + redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
                           KEYS[9], KEYS[11], KEYS[12])
if found == 0 then return -1 end
return 1
"""


async def delete_job(client: Client, job_id: str) -> None:
    """Delete an ended job (complete, failed or cancelled) with its records and blobs.

    SluiceError if it is queued or running (cancel it first), JobNotFound if there is none.
    """
    k = client.keys
    keys = [
        *k.job_keys(job_id), k.queue, k.failed, k.running,
        k.arq_job(job_id), k.arq_in_progress(job_id), k.arq_result(job_id), k.arq_retry(job_id),
    ]  # fmt: skip
    outcome = await client.redis.eval(DELETE, len(keys), *keys, job_id)
    if outcome == -1:
        raise JobNotFound(f"no job {job_id}")
    if outcome == 0:
        raise SluiceError(f"job {job_id} is queued or running; cancel it before deleting it")


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
    ids = await client.redis.zrevrange(client.keys.failed, 0, limit - 1)
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
