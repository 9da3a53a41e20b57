"""Removing ended jobs: one (`Client.delete`, `sluice delete`, the dashboard's Delete) or every
job in the failed set (`Client.purge_failed`, `sluice purge --failed`)."""

from __future__ import annotations

from typing import Any

from producer.contract.keys import Keys

PURGE_PAGE = 500  # failed-set members read, and jobs deleted, per round trip

# Delete every key of a job that has ended; a job in the queue, with units out, or in the
# running set is refused, so a live job is never pulled from under its workers.
# KEYS: status, inputs, results, blobs, spec, queue, failed set, running set, arq job, arq result
# ARGV: job id    Returns 1 deleted, 0 still live, -1 no such job.
DELETE = """
local state = redis.call('HGET', KEYS[1], 'state')
if redis.call('ZSCORE', KEYS[6], ARGV[1]) or state == 'in_progress' or state == 'queued'
   or redis.call('SISMEMBER', KEYS[8], ARGV[1]) == 1 then
  return 0
end
local found = redis.call('ZREM', KEYS[7], ARGV[1])
found = found + redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[9], KEYS[10])
if found == 0 then return -1 end
return 1
"""

DELETED, LIVE, MISSING = 1, 0, -1  # what DELETE returns


def delete_call(keys: Keys, job_id: str | bytes) -> dict[str, Any]:
    """The keys and arguments of DELETE for one job, as a script call takes them; an id read
    back from Redis (bytes, maybe not UTF-8) names its keys byte for byte."""
    raw = job_id if isinstance(job_id, bytes) else job_id.encode()
    text = raw.decode("utf-8", "surrogateescape")  # stray bytes ride through `Keys` and back

    def exact(key: str) -> bytes:
        return key.encode("utf-8", "surrogateescape")

    k = keys.for_job(text)
    own = [*k.job_keys(text), k.arq_job(text), k.arq_result(text)]
    named = [*map(exact, own[:5]), k.queue, k.failed, k.running, *map(exact, own[5:])]
    return {"keys": named, "args": [raw]}
