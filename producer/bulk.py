"""Enqueueing many jobs at once: a few hundred jobs per round trip (`Client.enqueue_many`).

One script call admits a chunk of jobs exactly as ``ENQUEUE`` admits one (arq's envelope
and queue entry, Sluice's status hash), so a worker cannot tell them apart. The jobs of one
call get ids that sort in the order given: jobs due in the same millisecond run in id
order, so a bulk enqueue runs first-in, first-out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from producer.errors import InvalidJob
from producer.models import JobSpec
from producer.settings import ClientSettings
from producer.validation import check_count, check_input, check_payload_size
from producer.wire import encode_job

BULK_JOBS = 500  # jobs per script call: ~0.1 MB of arguments, a few ms of Redis time

# Admit the jobs given, in order, while the queue has room under its cap.
# KEYS: queue, wake list
# ARGV: cap, score, expires ms, enqueued at (s), pipeline, status ttl s, wake tokens kept,
#       status hash prefix, arq job prefix, then (id, envelope, total) per job
# Returns how many of the jobs (the first ones) were admitted. The ids are fresh (job_ids),
# so unlike ENQUEUE there is no check that a job exists already.
ENQUEUE_MANY = """
local first = 10
local n = (#ARGV - first + 1) / 3
local cap = tonumber(ARGV[1])
if cap > 0 then n = math.max(0, math.min(n, cap - redis.call('ZCARD', KEYS[1]))) end
for j = 0, n - 1 do
  local i = first + 3 * j
  local id, status = ARGV[i], ARGV[8] .. ARGV[i]
  redis.call('SET', ARGV[9] .. id, ARGV[i + 1], 'PX', ARGV[3])
  redis.call('ZADD', KEYS[1], ARGV[2], id)
  redis.call('HSET', status, 'state', 'queued', 'pipeline', ARGV[5], 'total', ARGV[i + 2],
             'enqueued_at', ARGV[4], 'fetched', 0, 'transformed', 0, 'stored', 0, 'failed', 0)
  redis.call('EXPIRE', status, ARGV[6])
end
local kept = tonumber(ARGV[7])
if n > 0 and kept > 0 then
  local tokens = {}
  for t = 1, math.min(n, kept) do tokens[t] = 1 end
  redis.call('LPUSH', KEYS[2], unpack(tokens))
  redis.call('LTRIM', KEYS[2], 0, kept - 1)
end
return n
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One job of a bulk enqueue, ready for the script."""

    job_id: str
    envelope: bytes
    total: int


def job_ids(count: int) -> Iterator[str]:
    """``count`` fresh ids that sort in order: a random prefix, then a sequence number."""
    prefix = uuid.uuid4().hex[:20]
    return (f"{prefix}{n:012x}" for n in range(count))


def checked_jobs(jobs: Iterable[Sequence[str]], settings: ClientSettings) -> list[Sequence[str]]:
    """Every job's inputs checked, or InvalidJob naming the first bad job and what is wrong."""
    checked: list[Sequence[str]] = []
    limit = settings.inline_inputs_max
    for n, inputs in enumerate(jobs):
        if isinstance(inputs, str) or not isinstance(inputs, list | tuple):
            raise InvalidJob(
                f"job {n}: its inputs must be a list of URIs, got {type(inputs).__name__}"
            )
        if not inputs:
            raise InvalidJob(f"job {n}: a job needs at least one input")
        if len(inputs) > limit:
            raise InvalidJob(
                f"job {n}: {len(inputs)} inputs, over the {limit} a bulk enqueue sends inline "
                "(SLUICE_INLINE_INPUTS_MAX); enqueue it on its own"
            )
        try:
            check_count(len(inputs), settings)
            checked.append([check_input(i, value, settings) for i, value in enumerate(inputs)])
        except InvalidJob as exc:
            raise InvalidJob(f"job {n}: {exc}") from None
    return checked


def entries(
    spec: JobSpec,
    jobs: Sequence[Sequence[str]],
    ids: Iterable[str],
    enqueued_ms: int,
    settings: ClientSettings,
) -> list[Entry]:
    """The jobs' envelopes: ``spec`` (pipeline, options, trace) with each job's inputs."""
    out = []
    for n, (job_id, inputs) in enumerate(zip(ids, jobs, strict=True)):
        envelope = encode_job(spec.model_copy(update={"inputs": list(inputs)}), enqueued_ms)
        try:
            check_payload_size(len(envelope), settings)
        except InvalidJob as exc:
            raise InvalidJob(f"job {n}: {exc}") from None
        out.append(Entry(job_id, envelope, len(inputs)))
    return out
