"""Stopping a child process: SIGTERM, then SIGKILL if it has not exited in time."""

from __future__ import annotations

import subprocess


def terminate(process: subprocess.Popen[bytes] | None, timeout_s: float = 10.0) -> int | None:
    """Stop ``process`` if it runs; its exit code, or None if it had to be killed."""
    if process is None:
        return None
    if process.poll() is not None:
        return process.returncode
    process.terminate()
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None
