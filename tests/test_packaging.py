"""Building the package: no deprecation warnings from the build backend, and the metadata
it gives (the license as an SPDX expression)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from tests.conftest import ROOT


def test_wheel_builds_without_deprecation_warnings(tmp_path: Path) -> None:
    """pip builds the wheel (setuptools in an isolated environment) warning of nothing
    deprecated, and the wheel's metadata carries `License-Expression: MIT`."""
    source = tmp_path / "source"  # a copy: building leaves build/ and *.egg-info behind
    for name in ("producer", "worker"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp_path)]
    done = subprocess.run([*build, str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert "deprecated" not in output.lower(), output[-3000:]
    [wheel] = tmp_path.glob("sluice-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        assert "License-Expression: MIT" in archive.read(metadata).decode().splitlines()


def test_every_package_data_pattern_names_a_file() -> None:
    """Each pattern of [tool.setuptools.package-data] matches a file of its package: none is
    left over from a file that moved or never came."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]
    unmatched = [
        f"{package}: {pattern}"
        for package, listed in patterns.items()
        for pattern in listed
        if not any(path.is_file() for path in (ROOT / package).glob(pattern))
    ]
    assert unmatched == []
