"""deploy/ is valid as shipped, checked offline: each manifest by its own validator, plus
the promises the manifests make together (grace periods, ports, probes, names)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from producer.contract.keys import Keys
from producer.contract.settings import load_settings, unknown_env_settings
from tests.conftest import ROOT
from worker.settings import WorkerConfig

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BIN = Path(sys.executable).parent
KEDA_SCHEMA = json.loads((ROOT / "tests" / "schemas" / "keda.json").read_text())
GRACE_S = WorkerConfig.model_fields["shutdown_grace_s"].default


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((K8S / name).read_text())
    return document


def settings_in(values: dict[str, str]) -> WorkerConfig:
    """Worker settings from these SLUICE_* values; fails on an unknown or bad one."""
    assert unknown_env_settings(WorkerConfig, values) == []
    fields = {key.removeprefix("SLUICE_").lower(): value for key, value in values.items()}
    return load_settings(WorkerConfig, _env_file=None, **fields)


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    """hadolint finds nothing in the Dockerfile (and does flag a careless one)."""
    result = run(BIN / "hadolint", DEPLOY / "Dockerfile")
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN apt-get install curl\nCMD sluice-worker\n")
    assert run(BIN / "hadolint", careless).returncode != 0


def test_dockerfile_is_multistage_nonroot_and_uses_tini() -> None:
    """Two stages; the runtime runs as a numeric user, exec-form, under tini, with a check."""
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    assert sum(line.startswith("FROM ") for line in lines) >= 2
    runtime = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    assert any(re.fullmatch(r"USER \d+:\d+", line) for line in runtime)
    assert 'ENTRYPOINT ["tini", "--", "sluice-worker"]' in runtime
    assert any('CMD ["sluice-worker", "--check"]' in line for line in runtime)


def compose_spec_errors(compose: Path) -> str | None:
    """What check-jsonschema finds wrong in ``compose`` against its vendored compose-spec
    schema; None when it accepts it."""
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", compose)
    return (result.stdout + result.stderr) if result.returncode else None


def test_compose_matches_the_compose_spec(tmp_path: Path) -> None:
    """check-jsonschema accepts the compose file (and refuses a misspelt key)."""
    compose = DEPLOY / "docker-compose.yml"
    assert compose_spec_errors(compose) is None
    broken = tmp_path / "compose.yml"
    broken.write_text(compose.read_text().replace("stop_grace_period:", "stop_grace_perod:"))
    assert compose_spec_errors(broken) is not None


def test_compose_services_keep_their_promises() -> None:
    """Valkey persists and never evicts; workers scale, drain in time and serve metrics."""
    services = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    command = services["valkey"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert "healthcheck" in services["valkey"]
    worker = services["worker"]
    config = settings_in(worker["environment"] | {"SLUICE_METRICS_PORT": "9191"})
    assert config.metrics_port and worker["ports"] == [f"127.0.0.1::{config.metrics_port}"]
    assert "container_name" not in worker  # `--scale worker=N` needs unnamed containers
    assert int(worker["stop_grace_period"].removesuffix("s")) > config.shutdown_grace_s
    producer = services["producer"]
    assert producer["restart"] == "no" and producer["entrypoint"] == ["sluice"]


def test_kubernetes_objects_validate_strictly() -> None:
    """kubernetes-validate --strict passes every core object, on old and current versions."""
    files = [K8S / n for n in ("configmap.yaml", "secret.yaml", "deployment.yaml", "pdb.yaml")]
    for version in ("1.29.0", "1.37.0"):
        result = run(BIN / "kubernetes-validate", "--strict", "-k", version, *files)
        lines = (result.stdout + result.stderr).strip().splitlines()
        assert result.returncode == 0 and len(lines) == len(files), lines
        assert all(" passed for resource " in line for line in lines), lines


def test_kubernetes_validate_rejects_an_unknown_field(tmp_path: Path) -> None:
    """--strict is strict: a misspelt field in the Deployment fails validation."""
    broken = tmp_path / "deployment.yaml"
    text = (K8S / "deployment.yaml").read_text()
    broken.write_text(text.replace("terminationGracePeriodSeconds", "terminationGraceSeconds"))
    assert run(BIN / "kubernetes-validate", "--strict", broken).returncode != 0


@pytest.mark.parametrize(
    "name",
    [
        "keda-scaledobject.yaml",
        "keda-scaledobject-prometheus.yaml",
        "keda-triggerauthentication.yaml",
    ],
)
def test_keda_objects_match_their_schema(name: str) -> None:
    """Each KEDA object matches tests/schemas/keda.json (strict, string-valued metadata)."""
    jsonschema.validate(load(name), KEDA_SCHEMA)


def test_keda_schema_rejects_an_unquoted_number() -> None:
    """KEDA reads trigger metadata as strings: an unquoted listLength is refused."""
    jsonschema.Draft202012Validator.check_schema(KEDA_SCHEMA)
    scaled = load("keda-scaledobject.yaml")
    scaled["spec"]["triggers"][0]["metadata"]["listLength"] = 8
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, KEDA_SCHEMA)


def test_kubernetes_objects_agree_with_each_other() -> None:
    """Settings are known, the grace period outlasts the drain, and every name lines up."""
    config_map, deployment, secret = (
        load("configmap.yaml"),
        load("deployment.yaml"),
        load("secret.yaml"),
    )
    config = settings_in(config_map["data"])
    pod = deployment["spec"]["template"]
    assert pod["spec"]["terminationGracePeriodSeconds"] > config.shutdown_grace_s
    [container] = pod["spec"]["containers"]
    [port] = container["ports"]
    assert port == {"name": "metrics", "containerPort": config.metrics_port, "protocol": "TCP"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["resources"]["limits"] and container["resources"]["requests"]
    refs = [
        e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    ]
    assert all(
        r["name"] == secret["metadata"]["name"] and r["key"] in secret["stringData"] for r in refs
    )
    labels = pod["metadata"]["labels"]
    pdb = load("pdb.yaml")["spec"]["selector"]["matchLabels"]
    assert pdb.items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_keda_scales_the_deployment_on_the_units_of_work() -> None:
    """The ScaledObject targets the Deployment and adds this namespace's queue (units no
    worker holds) to its lease set (units held), so that a big job of many units asks for
    many workers; it logs in with a key the Secret holds."""
    config = settings_in(load("configmap.yaml")["data"])
    scaled, auth, secret = (
        load("keda-scaledobject.yaml"),
        load("keda-triggerauthentication.yaml"),
        load("secret.yaml"),
    )
    keys = Keys(config.namespace)
    assert scaled["spec"]["scaleTargetRef"]["name"] == load("deployment.yaml")["metadata"]["name"]
    listed = {t["name"]: t["metadata"]["listName"] for t in scaled["spec"]["triggers"]}
    assert listed == {"ready": keys.queue, "held": keys.leases}
    modifiers = scaled["spec"]["advanced"]["scalingModifiers"]
    assert modifiers["formula"] == "ready + held" and int(modifiers["target"]) >= 1
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    [ref] = auth["spec"]["secretTargetRef"]
    assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]


def test_kustomization_lists_every_object_but_the_alternative() -> None:
    """`kubectl apply -k deploy/k8s` applies every manifest except the alternative trigger."""
    listed = set(load("kustomization.yaml")["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present - {"keda-scaledobject-prometheus.yaml"}


def unit_lines() -> list[tuple[str, str]]:
    text = (DEPLOY / "systemd" / "sluice-worker@.service").read_text()
    pairs = [
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    ]
    return [(key, value) for key, value in pairs]


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` prints nothing for an instance of the template unit."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (DEPLOY / "systemd" / "sluice-worker@.service").read_text()
    # verify checks ExecStart exists: point it at this environment's sluice-worker
    unit = unit.replace("/opt/sluice/bin/sluice-worker", str(BIN / "sluice-worker"))
    (tmp_path / "sluice-worker@.service").write_text(unit)
    result = run(analyze, "verify", tmp_path / "sluice-worker@9101.service")
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    (tmp_path / "sluice-worker@.service").write_text(
        unit.replace("KillMode=mixed", "KillMode=mxed")
    )
    assert run(analyze, "verify", tmp_path / "sluice-worker@9101.service").stderr


def test_systemd_unit_drains_before_it_is_killed() -> None:
    """KillMode=mixed, a stop timeout past the grace period, settings from EnvironmentFile."""
    unit = unit_lines()
    assert ("KillMode", "mixed") in unit
    [stop] = [int(value) for key, value in unit if key == "TimeoutStopSec"]
    assert stop > GRACE_S
    assert ("EnvironmentFile", "/etc/sluice/worker.env") in unit
    assert ("Environment", "SLUICE_METRICS_PORT=%i") in unit
    assert {"NoNewPrivileges", "ProtectSystem", "PrivateTmp", "CapabilityBoundingSet"} <= dict(
        unit
    ).keys()
    example = (DEPLOY / "systemd" / "worker.env.example").read_text().splitlines()
    settings_in(dict(line.split("=", 1) for line in example if line and not line.startswith("#")))
