"""The status hash ``{ns}:job:{id}``, field by field: the one schema every reader and writer
spells its fields from (the Lua scripts too: tests/test_status_schema.py holds them to it).

The documented table is in docs/wire-format.md; a reader of plain Redis commands sees these.
"""

from __future__ import annotations

from enum import StrEnum

from producer.contract.models import STAGES


class Field(StrEnum):
    """A field of a job's status hash."""

    # what a job is and how far it got (JobStatus reads these)
    STATE = "state"  # a JobState value
    PIPELINE = "pipeline"
    TOTAL = "total"  # inputs
    FETCHED = "fetched"  # inputs that left each stage...
    TRANSFORMED = "transformed"
    STORED = "stored"  # ... and got a record; of which:
    FAILED = "failed"  # records that hold an error
    ERROR = "error"  # why the job failed (or why it runs again)
    ATTEMPTS = "attempts"  # the most tries any unit took
    WORKER = "worker"  # the last worker handed a unit
    ENQUEUED_AT = "enqueued_at"  # epoch s
    STARTED_AT = "started_at"
    FINISHED_AT = "finished_at"
    # fetches that waited for a rate limit's slot, and their seconds waiting (not in fetch_s)
    RATE_WAIT_COUNT = "rate_wait_count"
    RATE_WAIT_S = "rate_wait_s"
    # what the enqueue chose (absent: the default queue, priority 0, the worker's settings)
    QUEUE = "queue"
    PRIORITY = "priority"
    TIMEOUT_S = "timeout_s"
    MAX_TRIES = "max_tries"
    RESULT_TTL_S = "result_ttl_s"
    NOT_BEFORE = "not_before"  # ms epoch: a deferred job of priority > 0 starts no sooner
    CALLBACK_URL = "callback_url"  # the job's own webhook (docs/webhooks.md)
    SCHEDULE = "schedule"  # the schedule whose tick enqueued the job (docs/schedules.md)
    # the webhook's delivery of the job's ending (worker.webhooks); reset by a retry
    WEBHOOK_STATE = "webhook_state"  # a WebhookState value
    WEBHOOK_ATTEMPTS = "webhook_attempts"
    WEBHOOK_ERROR = "webhook_error"
    WEBHOOK_AT = "webhook_at"  # epoch s of the last attempt
    # the split into units (worker.lifecycle.claim)
    UNITS = "units"
    UNIT_SIZE = "unit_size"
    UNITS_DONE = "units_done"
    HELD = "held"  # units workers hold now
    RUN = "run"  # 1, then one more per retry or resume
    # flags the ending reads to set the TTL of the keys a job has, and to write arq's result
    BLOBS = "blobs"  # a blob was stored
    INPUTS_LIST = "inputs_list"  # the inputs are in {ns}:job:{id}:inputs
    FOREIGN = "foreign"  # enqueued without a Client (raw commands, arq's client)
    # arq's job envelope (JSON) of a job a Client enqueued, from its enqueue to its ending (a job
    # written with raw commands has it at arq:job:{id} instead)
    ENVELOPE = "envelope"


# Per stage: items that left it, their seconds in it, and its capacity while the job ran
# (slots x seconds): fetch_count, fetch_s, fetch_slot_s, transform_count...
STAGE_SUFFIXES = ("_count", "_s", "_slot_s")
STAGE_FIELDS = tuple(f"{stage}{suffix}" for stage in STAGES for suffix in STAGE_SUFFIXES)

# While unit k is out: "unit:{k}" = "{token} {tries}" ("- {tries}" once handed back)
UNIT_FIELD_PREFIX = "unit:"

ALL = frozenset({*Field, *STAGE_FIELDS})


def unit_field(unit: int) -> str:
    """The field holding unit ``unit``'s lease."""
    return f"{UNIT_FIELD_PREFIX}{unit}"


def stage_field(stage: str, suffix: str) -> str:
    """``{stage}{suffix}``, one of STAGE_FIELDS."""
    name = f"{stage}{suffix}"
    assert name in STAGE_FIELDS, name
    return name
