"""Reading the schedules a worker fires from SLUICE_SCHEDULES (JSON) and
SLUICE_SCHEDULES_MODULE (a module's ``SCHEDULES``), checked at start-up: every problem stops
the worker with a message naming the setting and the schedule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from producer.contract.errors import ConfigError, InvalidJob, described
from producer.contract.schedules import Schedule
from producer.contract.validation import (
    check_count,
    check_input,
    check_json,
    check_payload_size,
)
from producer.contract.wire import encode_job
from worker.registry import Pipeline, import_named
from worker.settings import WorkerConfig

JSON_SETTING = "SLUICE_SCHEDULES"
MODULE_SETTING = "SLUICE_SCHEDULES_MODULE"


def load_schedules(config: WorkerConfig, pipelines: Mapping[str, Pipeline]) -> list[Schedule]:
    """The schedules of both settings, each checked against this worker's pipelines and
    limits, or ConfigError naming the setting and the schedule."""
    found = [(JSON_SETTING, s) for s in _from_json(config.schedules)]
    if config.schedules_module:
        found += [(MODULE_SETTING, s) for s in _from_module(config.schedules_module)]
    named: dict[str, str] = {}
    for setting, schedule in found:
        if schedule.name in named:
            raise ConfigError(
                f"invalid setting {setting}: schedule {schedule.name!r} is defined twice "
                f"(also in {named[schedule.name]}); give each schedule a name of its own"
            )
        named[schedule.name] = setting
        problem = _job_problem(schedule, pipelines, config)
        if problem:
            raise ConfigError(f"invalid setting {setting}: schedule {schedule.name!r}: {problem}")
    return [schedule for _, schedule in found]


def _from_json(text: str) -> list[Schedule]:
    if not text.strip():
        return []
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"invalid setting {JSON_SETTING}: not JSON ({exc})") from None
    if not isinstance(raw, list):
        raise ConfigError(
            f"invalid setting {JSON_SETTING}: must be a JSON list of schedules, got "
            f"{type(raw).__name__}"
        )
    return [_schedule(JSON_SETTING, n, item) for n, item in enumerate(raw)]


def _from_module(name: str) -> list[Schedule]:
    module = import_named(name, MODULE_SETTING)
    listed = getattr(module, "SCHEDULES", None)
    if not isinstance(listed, list | tuple):
        raise ConfigError(
            f"invalid setting {MODULE_SETTING}: module {name!r} has no SCHEDULES list "
            "(SCHEDULES = [Schedule(...), ...])"
        )
    return [_schedule(MODULE_SETTING, n, item) for n, item in enumerate(listed)]


def _schedule(setting: str, index: int, item: Any) -> Schedule:
    if isinstance(item, Schedule):
        return item
    label = f"schedule {item.get('name')!r}" if isinstance(item, dict) else f"entry {index}"
    try:
        return Schedule.model_validate(item)
    except ValidationError as exc:
        raise ConfigError(
            f"invalid setting {setting}: {label}: {described(exc, 'definition')}"
        ) from None


def _job_problem(
    schedule: Schedule, pipelines: Mapping[str, Pipeline], config: WorkerConfig
) -> str | None:
    """What would stop the schedule's job at enqueue or in this worker, or None."""
    pipeline = pipelines.get(schedule.pipeline)
    if pipeline is None:
        runs = ", ".join(sorted(pipelines))
        return (
            f"pipeline {schedule.pipeline!r} is not one this worker runs ({runs}); add its "
            "module to SLUICE_PIPELINES"
        )
    try:
        check_json(schedule.options, "options")
        pipeline.check_options(schedule.options)
        for index, uri in enumerate(schedule.inputs):
            check_input(index, uri, config)
        check_count(len(schedule.inputs), config)
        check_payload_size(len(encode_job(schedule.job_spec(), 0)), config)
    except (ValueError, InvalidJob) as exc:
        return str(exc)
    return None
