"""The documentation says what the code offers: every setting in docs/configuration.md, every
CLI command in docs/cli.md, and a README that stays a short guide linking to them."""

from __future__ import annotations

import re

from typer.main import get_command

from producer.cli.app import app
from producer.contract.settings import ClientSettings
from producer.dashboard.settings import DashboardSettings
from tests.conftest import ROOT
from worker.settings import WorkerConfig

README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"


def readers() -> dict[str, str]:
    """Each setting's variable, with who reads it: every process (the shared settings), the
    worker alone, or the dashboard alone."""
    shared = set(ClientSettings.model_fields)
    found = {name: "all" for name in shared}
    found.update({name: "worker" for name in set(WorkerConfig.model_fields) - shared})
    found.update({name: "dashboard" for name in set(DashboardSettings.model_fields) - shared})
    return {f"SLUICE_{name.upper()}": reader for name, reader in found.items()}


def test_every_setting_is_documented() -> None:
    """Each SLUICE_* setting has a row in docs/configuration.md's settings table."""
    table = (DOCS / "configuration.md").read_text()
    missing = [name for name in readers() if f"| `{name}` |" not in table]
    assert missing == []


def test_who_reads_each_setting_is_what_the_code_reads() -> None:
    """The table's "Who reads it" column matches the settings class that holds the setting:
    "all" for the shared ones, "worker" for the worker's, "dashboard" for the dashboard's."""
    table = (DOCS / "configuration.md").read_text()
    rows = re.findall(r"^\| `(SLUICE_\w+)` \| [^|]* \| ([^|]+) \|", table, re.MULTILINE)
    documented = {name: reader.strip().split(",")[0] for name, reader in rows}
    assert documented == readers()


def test_every_cli_command_is_documented() -> None:
    """Each `sluice` command has a row in docs/cli.md's command table."""
    table = (DOCS / "cli.md").read_text()
    commands = get_command(app).commands  # type: ignore[attr-defined]
    missing = [name for name in commands if f"| `sluice {name}" not in table]
    assert missing == []


def test_quickstart_is_two_commands() -> None:
    """README's quickstart is `make demo` and `make test`."""
    assert "make demo" in README
    assert "make test" in README


def test_readme_is_a_short_guide_linking_every_docs_page() -> None:
    """README stays short, and links each page of docs/ (the reference lives there)."""
    assert len(README.splitlines()) <= 120
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)\)", README))
    assert {page.name for page in DOCS.glob("*.md")} <= linked
