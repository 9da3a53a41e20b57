"""Child processes in tests: stopping one (SIGTERM, then SIGKILL), finding its descendants,
and telling whether a process still runs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


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


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, their children...), read from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent]
        found += children
        frontier += children
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie is dead for our purpose)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
