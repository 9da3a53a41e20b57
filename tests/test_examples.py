"""Every Python and shell example in README.md and docs/ runs as written, against a real server
and worker; a block that cannot run here says why in a ``<!-- not run: ... -->`` line above it.

The examples run in the default namespace, so they get a Valkey server and a worker of their
own (not the session's server, where tests share one keyspace).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from tests.conftest import ROOT, worker_env
from tests.support.servers import Server, valkey_binary
from tests.support.workers import WorkerFactory

RUNNERS = {"python": [sys.executable], "bash": ["bash", "-euo", "pipefail"]}
DATA = {"text", "promql"}  # blocks that show something, not code to run
NOT_RUN = "<!-- not run:"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
WEBHOOK_SECRET = "examples-webhook-secret"


@dataclass(frozen=True)
class Block:
    """A fenced code block: where it is, its language, its code, why it is not run (if so)."""

    page: Path
    line: int
    language: str
    code: str
    not_run: str | None

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> Iterator[Block]:
    """The page's fenced blocks; an indented code block fails, since it has no language."""
    tokens = MarkdownIt("commonmark").parse(page.read_text())
    for i, token in enumerate(tokens):
        line = (token.map or [0])[0] + 1
        assert token.type != "code_block", f"{page.name}:{line}: fence it, with a language"
        if token.type != "fence":
            continue
        before = tokens[i - 1] if i else None
        marker = before.content.strip() if before and before.type == "html_block" else ""
        reason = marker.removeprefix(NOT_RUN).removesuffix("-->").strip() or None
        not_run = reason if marker.startswith(NOT_RUN) else None
        yield Block(page, line, token.info.strip(), token.content, not_run)


ALL = [block for page in PAGES for block in blocks(page)]
RUN = [block for block in ALL if block.language in RUNNERS and block.not_run is None]


def test_only_marked_blocks_are_not_run() -> None:
    """Every block names its language; a block not run is data, or says why it is not run."""
    for block in ALL:
        assert block.language in {*RUNNERS, *DATA}, f"{block.name}: language {block.language!r}"
        if block.language in DATA:
            assert block.not_run is None, f"{block.name}: data is never run anyway"
    skipped = {block.name: block.not_run for block in ALL if block.not_run is not None}
    assert all(skipped.values()), f"a not-run marker without a reason: {skipped}"
    assert len(RUN) >= 5  # README's two, the client's, arq's and the pipeline module


@pytest.fixture(scope="module")
def examples_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A server and a worker for the examples, and the environment a user's shell would have."""
    root = tmp_path_factory.mktemp("examples")
    server = Server(valkey_binary(), root / "valkey").start()
    env = worker_env(server.url, "sluice", root)
    env.pop("SLUICE_NAMESPACE")  # the examples use the default namespace
    env["SLUICE_WEBHOOK_SECRET"] = WEBHOOK_SECRET  # docs/webhooks.md's receiver knows it too
    factory = WorkerFactory(base_env=env, log_dir=root, redis_url=server.url, namespace="sluice")
    try:
        factory()
        shell = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        bin_dir = str(Path(sys.executable).parent)  # `sluice` and `sluice-worker`
        shell.update(
            SLUICE_REDIS_URL=server.url,
            SLUICE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            PYTHONPATH=str(ROOT),
            PATH=f"{bin_dir}{os.pathsep}{shell.get('PATH', '')}",
        )
        yield shell
    finally:
        factory.stop_all()
        server.stop()


@pytest.mark.parametrize("block", RUN, ids=[block.name for block in RUN])
def test_example_runs_as_written(
    block: Block, examples_env: dict[str, str], tmp_path: Path
) -> None:
    """The block, run as a file by Python or bash, exits 0."""
    script = tmp_path / ("example.py" if block.language == "python" else "example.sh")
    script.write_text(block.code)
    command = [*RUNNERS[block.language], str(script)]
    done = subprocess.run(
        command, cwd=tmp_path, env=examples_env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{block.name}:\n{block.code}\n{done.stdout}\n{done.stderr}"
