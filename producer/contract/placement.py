"""Where a job waits and in what order: its queue, and its place in that queue.

Each queue is a sorted set of due times (ms epoch); workers take the earliest first, from
every queue they serve at once, so no queue starves another. A job's priority moves its
place forward: priority p is placed as if the job had become due p x PRIORITY_STEP_S
earlier. It goes ahead of lower-priority work that became due less than that before it, and
behind work that has waited longer, so nothing waits for ever behind a stream of urgent
jobs. A deferred job of priority > 0 also carries ``not_before`` in its status hash: the
claim does not start it before its time, though its place is earlier.
"""

from __future__ import annotations

from producer.contract.models import PRIORITY_STEP_S, JobSpec
from producer.contract.status import Field

PRIORITY_STEP_MS = PRIORITY_STEP_S * 1000
# Most queue names a namespace knows (besides "default"): each costs every `sluice stats`,
# metrics scrape and KEDA poll, so an enqueue to one more is refused. Retire a name with
# ``SREM {ns}:queues NAME`` once its queue is empty.
MAX_QUEUES = 100


def too_many_queues(queue: str) -> str:
    """InvalidJob's message for an enqueue to one queue more than MAX_QUEUES."""
    return (
        f"queue {queue!r} would be one more than the {MAX_QUEUES} queues a namespace may have "
        "(MAX_QUEUES); use an existing queue, or retire one (docs/queues.md)"
    )


def place(due_ms: int, priority: int) -> int:
    """The queue score of work due at ``due_ms`` with this priority."""
    return due_ms - priority * PRIORITY_STEP_MS


def chosen_fields(spec: JobSpec, due_ms: int, deferred: bool) -> list[str]:
    """The status-hash fields (name, value, ...) of what the enqueue chose beyond the usual:
    a queue, a priority, overrides of the worker's settings, a callback URL. Empty for the
    usual job."""
    out: list[str] = []
    if spec.queue != JobSpec.model_fields["queue"].default:
        out += (Field.QUEUE, spec.queue)
    if spec.priority:
        out += (Field.PRIORITY, str(spec.priority))
        if deferred:
            out += (Field.NOT_BEFORE, str(due_ms))
    if spec.timeout_s is not None:
        out += (Field.TIMEOUT_S, repr(spec.timeout_s))
    if spec.max_tries is not None:
        out += (Field.MAX_TRIES, str(spec.max_tries))
    if spec.result_ttl_s is not None:
        out += (Field.RESULT_TTL_S, str(spec.result_ttl_s))
    if spec.callback_url is not None:
        out += (Field.CALLBACK_URL, spec.callback_url)
    return out
