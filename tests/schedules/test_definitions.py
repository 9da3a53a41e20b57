"""Schedules read from SLUICE_SCHEDULES and SLUICE_SCHEDULES_MODULE at start-up: good ones
are read, and a bad one stops the worker naming the setting and the schedule."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from producer import ConfigError
from producer.contract.schedules import Schedule
from tests.conftest import worker_env
from tests.support.servers import Server
from worker.registry import REGISTRY, load_modules
from worker.schedules.definitions import load_schedules
from worker.settings import WorkerConfig

GOOD = {"name": "nightly", "pipeline": "text-stats", "inputs": ["data:,x"], "cron": "0 3 * * *"}


def config(**settings: object) -> WorkerConfig:
    return WorkerConfig(_env_file=None, **settings)  # type: ignore[arg-type]


def load(**settings: object) -> list[Schedule]:
    load_modules(())
    return load_schedules(config(**settings), REGISTRY.pipelines)


def test_schedules_are_read_from_json() -> None:
    """A JSON list: each schedule with its defaults filled in."""
    (nightly,) = load(schedules=json.dumps([GOOD]))
    assert (nightly.name, nightly.cron, nightly.timezone, nightly.missed) == (
        "nightly",
        "0 3 * * *",
        "UTC",
        "skip",
    )


def test_schedules_are_read_from_a_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module's SCHEDULES, as Schedule objects or dicts, beside the JSON setting's."""
    module = f"sched_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "from producer.contract.schedules import Schedule\n"
        "SCHEDULES = [\n"
        "    Schedule(name='hourly', pipeline='text-stats', inputs=['data:,x'],"
        " cron='0 * * * *'),\n"
        "    {'name': 'often', 'pipeline': 'text-stats', 'inputs': ['data:,y'], 'every_s': 30},\n"
        "]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    found = load(schedules=json.dumps([GOOD]), schedules_module=module)
    assert [s.name for s in found] == ["nightly", "hourly", "often"]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("[{", "invalid setting SLUICE_SCHEDULES: not JSON"),
        ('{"name": "x"}', "invalid setting SLUICE_SCHEDULES: must be a JSON list"),
        (
            [GOOD | {"cron": "0 25 * * *"}],
            "invalid setting SLUICE_SCHEDULES: schedule 'nightly': cron: '0 25 * * *' is not a "
            "valid cron expression",
        ),
        (
            [GOOD | {"timezone": "Europe/Atlantis"}],
            "invalid setting SLUICE_SCHEDULES: schedule 'nightly': timezone: 'Europe/Atlantis'",
        ),
        (
            [GOOD | {"pipeline": "no-such"}],
            "invalid setting SLUICE_SCHEDULES: schedule 'nightly': pipeline 'no-such' is not one "
            "this worker runs",
        ),
        (
            [GOOD | {"inputs": ["no scheme"]}],
            "invalid setting SLUICE_SCHEDULES: schedule 'nightly': input 0: 'no scheme' has no "
            "URI scheme",
        ),
        (
            [GOOD | {"options": {"top": "many"}}],
            "invalid setting SLUICE_SCHEDULES: schedule 'nightly': invalid options for pipeline "
            "'text-stats'",
        ),
        (
            [GOOD, GOOD],
            "invalid setting SLUICE_SCHEDULES: schedule 'nightly' is defined twice",
        ),
        ([42], "invalid setting SLUICE_SCHEDULES: entry 0: definition: Input should be"),
    ],
)
def test_a_bad_definition_names_the_setting_and_the_schedule(
    given: str | list[object], message: str
) -> None:
    """What is wrong, where: the setting, the schedule, the field."""
    text = given if isinstance(given, str) else json.dumps(given)
    with pytest.raises(ConfigError) as caught:
        load(schedules=text)
    assert message in str(caught.value)


def test_a_module_without_schedules_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module that cannot be imported, or has no SCHEDULES list, names the setting."""
    module = f"sched_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text("SCHEDULE = []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=f"SLUICE_SCHEDULES_MODULE: module '{module}' has no"):
        load(schedules_module=module)
    with pytest.raises(ConfigError, match="SLUICE_SCHEDULES_MODULE: cannot import 'nope_x'"):
        load(schedules_module="nope_x")
    broken = f"sched_{uuid.uuid4().hex[:8]}"  # its import raises what cannot be printed
    (tmp_path / f"{broken}.py").write_text(
        "from tests.hostile_pipelines import UnprintableError\nraise UnprintableError()\n"
    )
    with pytest.raises(ConfigError, match=f"cannot import '{broken}': UnprintableError"):
        load(schedules_module=broken)


def test_a_bad_schedule_stops_the_worker(server: Server, tmp_path: Path) -> None:
    """The worker exits 2 at once, naming the setting and the schedule, no traceback."""
    env = worker_env(server.url, "cfg", tmp_path)
    env["SLUICE_SCHEDULES"] = json.dumps([GOOD | {"every_s": 60}])
    done = subprocess.run(
        [sys.executable, "-m", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "invalid setting SLUICE_SCHEDULES: schedule 'nightly': " in done.stderr
    assert "exactly one of cron" in done.stderr
    assert "Traceback" not in done.stderr
