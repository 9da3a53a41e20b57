"""The status hash has one schema (producer/contract/status.py): the Lua scripts and the
worker's counters spell no field it does not name."""

from __future__ import annotations

import re
from dataclasses import fields

from producer.contract import control_scripts, enqueue_scripts
from producer.contract.events import EVENT_FIELDS, EventType
from producer.contract.keys import DEFAULT_QUEUE
from producer.contract.models import JobState, JobStatus, WebhookState, WebhookStatus
from producer.contract.status import ALL, UNIT_FIELD_PREFIX, Field
from worker.lifecycle import claim_script, end_script, lease
from worker.stages import progress, store
from worker.stages.items import StageCounters
from worker.webhooks import store as webhooks

SCRIPTS = {
    "ENQUEUE": enqueue_scripts.ENQUEUE,
    "ENQUEUE_MANY": enqueue_scripts.ENQUEUE_MANY,
    "CANCEL": control_scripts.CANCEL,
    "RETRY": control_scripts.RETRY,
    "RETRY_INPUTS": control_scripts.RETRY_INPUTS,
    "CLAIM": claim_script.CLAIM,
    "END": end_script.END,
    "RENEW": lease.RENEW,
    "STORE": store.STORE,
    "PROGRESS": progress.PROGRESS,
    "CLAIM_WEBHOOKS": webhooks.CLAIM,
    "SETTLE_WEBHOOK": webhooks.SETTLE,
}
# quoted words in the scripts that are not fields: the states a field holds, the codes the
# scripts answer, what Lua's type() says, and the pieces field names are built from
CODES = {"ok", "lost", "done", "release", "released", "resumed", "retry"}
LUA_WORDS = {"number", "string", "table", "function", "true", "false"}
NOT_FIELDS = (
    {s.value for s in JobState}
    | {s.value for s in WebhookState}
    | CODES
    | LUA_WORDS
    | {"_s", "+inf", UNIT_FIELD_PREFIX, DEFAULT_QUEUE}
    | {e.value for e in EventType}  # the event stream's types and fields, not the hash's
    | set(EVENT_FIELDS)
)


def test_every_lowercase_word_the_scripts_quote_is_a_field_or_a_known_word() -> None:
    """A field a script writes or reads is in the schema: a new one must be named there."""
    words = {
        (name, word)
        for name, source in SCRIPTS.items()
        for word in re.findall(r"'([a-z_:+]+)'", source)
    }
    unknown = {(name, word) for name, word in words if word not in ALL | NOT_FIELDS}
    assert unknown == set()


def test_the_workers_counters_are_fields_of_the_schema() -> None:
    """The counters a worker adds to the hash (progress and endings) are named there."""
    assert {f.name for f in fields(StageCounters)} <= ALL


def test_what_a_status_reads_from_the_hash_is_in_the_schema() -> None:
    """Every JobStatus attribute that the hash holds is a Field."""
    from_hash = set(JobStatus.model_fields) - {"job_id", "stages", "webhook"}
    assert from_hash <= {f.value for f in Field}
    webhook = {f"webhook_{name}" for name in WebhookStatus.model_fields} - {"webhook_url"}
    assert webhook | {Field.CALLBACK_URL} <= {f.value for f in Field}
