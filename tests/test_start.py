"""The `sluice-worker` console script: it imports pipeline modules from the working directory
as `python -m worker` does, and names the extra to install when arq is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from producer import Client, JobState
from tests.conftest import worker_env
from tests.support.servers import Server
from tests.support.workers import WorkerProcess

SLUICE_WORKER = str(Path(sys.executable).parent / "sluice-worker")
MY_PIPES = '''
from worker import pipeline


@pipeline("shout")
def shout(data, options):
    """Upper-cases the text."""
    return {"text": data.decode().upper()}
'''
# Makes arq unimportable in the process that loads it, as in an install without the extra.
NO_ARQ = """
import sys


class NoArq:
    def find_spec(self, name, path=None, target=None):
        if name == "arq" or name.startswith("arq."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoArq())
"""


async def test_console_script_imports_pipelines_from_the_working_directory(
    server: Server, client: Client, tmp_path: Path
) -> None:
    """`SLUICE_PIPELINES=mypipes sluice-worker` run where mypipes.py is runs its pipeline."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "mypipes.py").write_text(MY_PIPES)
    env = worker_env(server.url, client.settings.namespace, tmp_path)
    env["SLUICE_PIPELINES"] = "mypipes"
    worker = WorkerProcess(
        env=env, log_path=tmp_path / "worker.log", command=[SLUICE_WORKER], cwd=project
    ).start()
    try:
        worker.wait_ready(server.url, client.settings.namespace)
        job_id = await client.enqueue("shout", ["data:,hello"])
        assert (await client.wait(job_id, timeout_s=60)).state == JobState.COMPLETE
        [record] = [r async for r in client.results(job_id)]
        assert record.result == {"text": "HELLO"}
    finally:
        assert worker.stop() == 0


def test_console_script_without_arq_names_the_extra(tmp_path: Path) -> None:
    """Without arq, `sluice-worker` exits 2 with one line naming `sluice[worker]`."""
    (tmp_path / "sitecustomize.py").write_text(NO_ARQ)
    env = worker_env("redis://127.0.0.1:1", "noarq", tmp_path)
    env["PYTHONPATH"] = f"{tmp_path}:{env['PYTHONPATH']}"
    for command in ([SLUICE_WORKER], [sys.executable, "-m", "worker"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [
            "sluice-worker: the worker needs the 'worker' extra ('arq' is not installed): "
            "pip install 'sluice[worker]'"
        ]
