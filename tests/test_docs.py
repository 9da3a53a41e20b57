"""README documents what the code offers: every setting and every CLI command."""

from __future__ import annotations

from typer.main import get_command

from producer.cli.app import app
from tests.conftest import ROOT
from worker.settings import WorkerConfig

README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    """Each SLUICE_* setting appears in README's settings table."""
    missing = [
        f"SLUICE_{name.upper()}"
        for name in WorkerConfig.model_fields
        if f"`SLUICE_{name.upper()}`" not in README
    ]
    assert missing == []


def test_every_cli_command_is_documented() -> None:
    """Each `sluice` command appears in README."""
    commands = get_command(app).commands  # type: ignore[attr-defined]
    missing = [name for name in commands if f"sluice {name}" not in README]
    assert missing == []


def test_quickstart_is_two_commands() -> None:
    """README's quickstart is `make demo` and `make test`."""
    assert "make demo" in README
    assert "make test" in README
