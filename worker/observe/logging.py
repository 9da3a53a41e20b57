"""structlog set-up: JSON lines off a terminal, readable console output on one.

The stdlib loggers (arq's included) go through the same processors, so every line has
one shape, and a job's lines carry its job_id, pipeline and worker name.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

import structlog

from worker.settings import WorkerConfig

# The job a coroutine is running (job_id, pipeline, worker), merged into its log lines. One
# variable set once per job: structlog's bound_contextvars sets one per key, ~3x the cost.
JOB_FIELDS: ContextVar[dict[str, object] | None] = ContextVar("sluice_job_fields", default=None)


def merge_job_fields(
    logger: object, name: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """Add the running job's fields to a log line (fields given in the call win)."""
    fields = JOB_FIELDS.get()
    if fields:
        for key, value in fields.items():
            event.setdefault(key, value)
    return event


def configure_logging(config: WorkerConfig) -> None:
    use_json = config.log_format == "json" or (
        config.log_format == "auto" and not sys.stderr.isatty()
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        merge_job_fields,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # below the level a call returns at once, before any processor runs (the hot path
        # logs per job at info, which a production worker at warning must not pay for)
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[config.log_level.upper()]
        ),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if use_json else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level.upper())
    # arq logs two lines per job (with its arguments); Sluice's own job lines replace them,
    # and at thousands of small jobs a second they cost real time. Debug brings them back.
    if config.log_level != "debug":
        logging.getLogger("arq.worker").setLevel(logging.WARNING)


def _identity(
    logger: object, name: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    return event
