"""deploy/sentinel is valid as shipped: the compose file by its schema, the Kubernetes
overlay applied to deploy/k8s and then validated as deploy/k8s is, and the promises the
pieces make to each other (the sentinels Sluice is given, the primary's name, the replicas
it waits for)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import redis
import yaml

from producer.contract.keys import Keys
from tests.support.processes import terminate
from tests.support.sentinel import sentinel_binary
from tests.support.servers import Server, free_port, redis_server_binary
from tests.test_deploy import (
    BIN,
    DEPLOY,
    GRACE_S,
    K8S,
    KEDA_SCHEMA,
    compose_spec_errors,
    run,
    settings_in,
)

SENTINEL = DEPLOY / "sentinel"
OVERLAY = SENTINEL / "k8s"
# the lists of built-in objects kustomize merges item by item, by name; others it replaces
MERGED_BY_NAME = {"containers", "env", "volumes", "volumeMounts"}


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((SENTINEL / "docker-compose.yml").read_text())
    return document


def sentinel_config() -> list[str]:
    """The lines the compose file's sentinels write to their configuration file."""
    script = compose()["services"]["sentinel-1"]["command"][-1]
    return re.findall(r"'([^']*)'", script)[1:]  # the first is printf's format


def merge(base: Any, patch: Any, key: str = "") -> Any:
    """A strategic merge patch as kustomize applies one to these objects."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for name, value in patch.items():
            if value is None:
                out.pop(name, None)
            else:
                out[name] = merge(base.get(name), value, name) if name in base else value
        return out
    if isinstance(base, list) and isinstance(patch, list) and key in MERGED_BY_NAME:
        items = {item["name"]: item for item in base}
        for item in patch:
            if item.get("$patch") == "delete":
                items.pop(item["name"], None)
            else:
                items[item["name"]] = merge(items.get(item["name"], {}), item)
        return list(items.values())
    return patch


def overlaid(name: str) -> dict[str, Any]:
    """deploy/k8s's object in file ``name`` with the overlay's patch of it applied."""
    base = yaml.safe_load((K8S / name).read_text())
    patch = yaml.safe_load((OVERLAY / name).read_text())
    assert (patch["kind"], patch["metadata"]["name"]) == (base["kind"], base["metadata"]["name"])
    merged: dict[str, Any] = merge(base, patch)
    return merged


def test_compose_matches_the_compose_spec() -> None:
    """check-jsonschema accepts the Sentinel compose file."""
    assert compose_spec_errors(SENTINEL / "docker-compose.yml") is None


def test_compose_pieces_agree() -> None:
    """The workers are given every sentinel and the name they watch; the replicas follow the
    primary they watch; workers wait for no more replicas than there are; servers persist
    and never evict; workers drain before Docker kills them."""
    services = compose()["services"]
    worker = services["worker"]
    config = settings_in(worker["environment"])
    sentinels = sorted(name for name in services if name.startswith("sentinel-"))
    assert config.sentinel_addresses == [(name, 26379) for name in sentinels]
    assert config.redis_url is None and not config.embedded
    [monitor] = [line.split() for line in sentinel_config() if " monitor " in line]
    _, _, name, primary, port, quorum = monitor
    assert config.redis_master_name == name
    assert len(sentinels) // 2 < int(quorum) <= len(sentinels)
    data = [n for n in services if n.startswith("valkey-")]
    replicas = [n for n in data if "--replicaof" in services[n]["command"]]
    for replica in replicas:
        command = services[replica]["command"]
        assert command[command.index("--replicaof") + 1 :][:2] == [primary, port]
    assert primary in data and 0 < config.redis_wait_replicas < len(replicas) + 1
    for server in data:
        command = services[server]["command"]
        assert command[command.index("--appendonly") + 1] == "yes"
        assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
        assert command[command.index("--replica-announce-ip") + 1] == server
    assert int(worker["stop_grace_period"].removesuffix("s")) > GRACE_S
    assert settings_in(services["producer"]["environment"]).sentinel_addresses


@pytest.mark.skipif(
    sentinel_binary() is None or redis_server_binary() is None,
    reason="no redis-sentinel and redis-server to try the configuration with",
)
def test_compose_sentinel_configuration_is_accepted(tmp_path: Path) -> None:
    """redis-sentinel starts with the compose file's configuration (pointed at a local
    server) and watches the primary by the name the workers are given."""
    server_binary, binary = redis_server_binary(), sentinel_binary()
    assert server_binary is not None and binary is not None
    primary = Server(server_binary, tmp_path / "primary").start()
    port = free_port()
    lines = [
        line.replace("valkey-1 6379", f"127.0.0.1 {primary.port}") for line in sentinel_config()
    ]
    lines = [f"port {port}" if line.startswith("port ") else line for line in lines]
    (tmp_path / "sentinel.conf").write_text("\n".join(lines) + "\n")
    process = subprocess.Popen([binary, str(tmp_path / "sentinel.conf")], stdout=subprocess.DEVNULL)
    try:
        name = settings_in(compose()["services"]["worker"]["environment"]).redis_master_name
        client = redis.Redis(port=port, decode_responses=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                master = client.sentinel_master(name)
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-sentinel did not start"
                time.sleep(0.05)
        assert (master["port"], master["quorum"]) == (primary.port, 2)
        client.close()
    finally:
        terminate(process)
        primary.stop()


def test_overlay_patches_every_file_it_lists() -> None:
    """The overlay builds on deploy/k8s and patches exactly the files it holds."""
    kustomization = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["../../k8s"]
    listed = {patch["path"] for patch in kustomization["patches"]}
    assert listed == {p.name for p in OVERLAY.glob("*.yaml")} - {"kustomization.yaml"}


def test_overlaid_objects_validate_strictly(tmp_path: Path) -> None:
    """kubernetes-validate --strict passes the ConfigMap, Secret and Deployment as patched."""
    files = []
    for name in ("configmap.yaml", "secret.yaml", "deployment.yaml"):
        (tmp_path / name).write_text(yaml.safe_dump(overlaid(name)))
        files.append(tmp_path / name)
    result = run(BIN / "kubernetes-validate", "--strict", "-k", "1.29.0", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_overlaid_workers_and_keda_find_the_sentinels() -> None:
    """The patched workers get the sentinels, the name and the password and no URL; KEDA's
    triggers ask the same sentinels for the same primary and count this namespace's queue
    and lease set (the base's formula adds them), logging in with the Secret's password."""
    config_map, secret = overlaid("configmap.yaml"), overlaid("secret.yaml")
    [container] = overlaid("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    from_secret = {
        e["name"]: secret["stringData"][e["valueFrom"]["secretKeyRef"]["key"]]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert set(from_secret) == {"SLUICE_REDIS_PASSWORD"}
    config = settings_in(config_map["data"] | from_secret)
    assert config.redis_sentinels and config.redis_url is None
    scaled, auth = overlaid("keda-scaledobject.yaml"), overlaid("keda-triggerauthentication.yaml")
    jsonschema.validate(scaled, KEDA_SCHEMA)
    jsonschema.validate(auth, KEDA_SCHEMA)
    keys = Keys(config.namespace)
    listed = {t["name"]: t["metadata"]["listName"] for t in scaled["spec"]["triggers"]}
    assert listed == {"ready": keys.queue, "held": keys.leases}
    for trigger in scaled["spec"]["triggers"]:
        metadata = trigger["metadata"]
        assert metadata["addresses"].split(",") == config.redis_sentinels
        assert metadata["sentinelMaster"] == config.redis_master_name
    [ref] = auth["spec"]["secretTargetRef"]
    assert ref["parameter"] == "password" and ref["key"] in secret["stringData"]
