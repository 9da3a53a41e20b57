"""deploy/cluster is valid as shipped: the compose file by its schema and its nodes' command
by a real valkey-server, the Kubernetes overlay built by kustomize and validated as deploy/k8s
is, and the promises the pieces make to each other (cluster mode on, a node as the URL, every
node formed into the cluster, KEDA scaling on the gauges that count every shard)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest
import redis
import yaml

from tests.support.processes import terminate
from tests.support.servers import Server, free_port, valkey_binary
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
from worker.settings import WorkerConfig

CLUSTER = DEPLOY / "cluster"
OVERLAY = CLUSTER / "k8s"


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((CLUSTER / "docker-compose.yml").read_text())
    return document


def worker_settings(values: dict[str, str]) -> WorkerConfig:
    """Worker settings from these values: in cluster mode, over at least 3 shards."""
    config = settings_in(values)
    assert config.redis_cluster and config.keys.shards >= 3
    return config


def test_compose_matches_the_compose_spec() -> None:
    """check-jsonschema accepts the cluster compose file."""
    assert compose_spec_errors(CLUSTER / "docker-compose.yml") is None


def test_compose_pieces_agree() -> None:
    """Workers and producer run in cluster mode against a node; the init job forms every
    node into the cluster with a replica per primary, and the workers wait for it; workers
    drain before Docker kills them."""
    services = compose()["services"]
    nodes = sorted(name for name in services if name.startswith("valkey-"))
    worker, producer, init = services["worker"], services["producer"], services["cluster-init"]
    config = worker_settings(worker["environment"])
    assert config.redis_url is not None and not config.embedded
    host = re.fullmatch(r"redis://([\w-]+):6379/0", config.redis_url)
    assert host is not None and host[1] in nodes
    assert producer["environment"]["SLUICE_REDIS_CLUSTER"] == "true"
    assert producer["environment"]["SLUICE_REDIS_URL"] == config.redis_url
    script = init["command"][-1]
    assert re.search(r"for node in ([\w -]+);", script)[1].split() == nodes  # type: ignore[index]
    assert "--cluster-replicas 1" in script and len(nodes) == 6
    assert set(init["depends_on"]) == set(nodes) and init["restart"] == "no"
    assert worker["depends_on"] == {"cluster-init": {"condition": "service_completed_successfully"}}
    assert int(worker["stop_grace_period"].removesuffix("s")) > GRACE_S
    for node in nodes:
        assert services[node]["environment"] == {"NODE_NAME": node}


def test_compose_node_command_starts_a_cluster_node(tmp_path: Path) -> None:
    """The nodes' command, run by the embedded valkey-server (on a free port here), starts
    a cluster node announcing its service name, persisting and never evicting."""
    script = compose()["services"]["valkey-1"]["command"][-1].replace("$$", "$")
    port, bus = free_port(), free_port()
    local = f" --port {port} --cluster-port {bus} --bind 127.0.0.1 --dir {tmp_path}"
    env = {**os.environ, "NODE_NAME": "valkey-1"}
    env["PATH"] = f"{Path(valkey_binary()).parent}:{env['PATH']}"
    with (tmp_path / "log").open("wb") as log:
        process = subprocess.Popen(["sh", "-c", script + local], env=env, stdout=log, stderr=log)
    client = redis.Redis(port=port, decode_responses=True)
    try:
        Server(valkey_binary(), tmp_path, port=port, process=process).wait_ready(10)
        assert cast("dict[str, Any]", client.info("cluster"))["cluster_enabled"] == 1
        config = cast("dict[str, str]", client.config_get("*"))
        assert config["appendonly"] == "yes" and config["maxmemory-policy"] == "noeviction"
        assert config["cluster-announce-hostname"] == "valkey-1"
        assert (tmp_path / "nodes.conf").exists()
    finally:
        client.close()
        terminate(process)


def built() -> dict[str, dict[str, Any]]:
    """The overlay as `kubectl kustomize` builds it: each object by its kind."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the overlay cannot be built here")
    result = run(kubectl, "kustomize", OVERLAY)
    assert result.returncode == 0, result.stderr
    return {doc["kind"]: doc for doc in yaml.safe_load_all(result.stdout)}


def test_overlay_patches_every_file_it_lists() -> None:
    """The overlay builds on deploy/k8s and patches exactly the files it holds."""
    kustomization = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["../../k8s"]
    listed = {patch["path"] for patch in kustomization["patches"]}
    assert listed == {p.name for p in OVERLAY.glob("*.yaml")} - {"kustomization.yaml"}


def test_overlaid_objects_validate_strictly(tmp_path: Path) -> None:
    """kubernetes-validate --strict passes the built ConfigMap, Secret and Deployment, and
    the ScaledObject matches KEDA's schema."""
    objects = built()
    files = []
    for kind in ("ConfigMap", "Secret", "Deployment"):
        (tmp_path / f"{kind}.yaml").write_text(yaml.safe_dump(objects[kind]))
        files.append(tmp_path / f"{kind}.yaml")
    result = run(BIN / "kubernetes-validate", "--strict", "-k", "1.29.0", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    jsonschema.validate(objects["ScaledObject"], KEDA_SCHEMA)


def test_overlaid_workers_run_in_cluster_mode_and_keda_counts_every_shard() -> None:
    """The workers get cluster mode, the shards and a node's URL from the Secret; KEDA
    scales on the workers' gauges (deploy/k8s's Prometheus trigger, which count every
    shard), keeps a worker running to report them, and no longer logs in to Redis."""
    objects = built()
    secret, config_map = objects["Secret"], objects["ConfigMap"]
    url = secret["stringData"]["SLUICE_REDIS_URL"]
    config = worker_settings(config_map["data"] | {"SLUICE_REDIS_URL": url})
    assert config.redis_url == url and url.endswith(":6379/0")
    assert "TriggerAuthentication" not in objects
    scaled = objects["ScaledObject"]["spec"]
    prometheus = yaml.safe_load((K8S / "keda-scaledobject-prometheus.yaml").read_text())
    assert scaled["triggers"] == prometheus["spec"]["triggers"]
    assert scaled["minReplicaCount"] >= 1 and "scalingModifiers" not in scaled["advanced"]


def loopback_addresses(names: list[str]) -> dict[str, str]:
    """An address of its own on loopback for each node (127.0.0.2, ...), so each can listen
    on the compose file's ports, 6379 and 16379; the test is skipped if one is taken."""
    addresses = {name: f"127.0.0.{i + 2}" for i, name in enumerate(names)}
    for address in addresses.values():
        for port in (6379, 16379):
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
                try:
                    sock.bind((address, port))
                except OSError as exc:
                    pytest.skip(f"{address}:{port} is taken here: {exc}")
    return addresses


def test_compose_init_job_forms_the_cluster_once(tmp_path: Path) -> None:
    """The init job's script, run against six nodes started with the compose file's command
    (each on a loopback address of its own; `getent` answers for the service names), forms a
    cluster of three primaries and three replicas; run again, it sees it formed and exits 0."""
    services = compose()["services"]
    nodes = sorted(name for name in services if name.startswith("valkey-"))
    addresses = loopback_addresses(nodes)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    answers = "".join(
        f'  {name}) echo "{address} {name}";;\n' for name, address in addresses.items()
    )
    (bin_dir / "getent").write_text(f'#!/bin/sh\ncase "$2" in\n{answers}esac\n')
    (bin_dir / "getent").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{Path(valkey_binary()).parent}:{os.environ['PATH']}"}
    node_script = services["valkey-1"]["command"][-1].replace("$$", "$")
    processes = []
    try:
        for name, address in addresses.items():
            data = tmp_path / name
            data.mkdir()
            # the source address too: a node takes a peer to be where its connection came from
            script = f"{node_script} --bind {address} --bind-source-addr {address} --dir {data}"
            with (data / "log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        ["sh", "-c", script], env={**env, "NODE_NAME": name}, stdout=log, stderr=log
                    )
                )
        for address in addresses.values():
            wait_for_ping(address)
        init = services["cluster-init"]["command"][-1].replace("$$", "$")
        init = init.replace("-h valkey-1", f"-h {addresses['valkey-1']}")
        for _ in range(2):  # the second run finds the cluster formed
            done = subprocess.run(
                ["sh", "-c", init], env=env, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, done.stdout + done.stderr
        with redis.Redis(host=addresses["valkey-1"], port=6379, decode_responses=True) as client:
            info = cast("str", client.execute_command("CLUSTER", "INFO"))
            assert "cluster_state:ok" in info and "cluster_size:3" in info
            assert "cluster_known_nodes:6" in info
            shards = cast("list[Any]", client.execute_command("CLUSTER", "SHARDS"))
            assert len(shards) == 3
    finally:
        for process in processes:
            terminate(process)


def wait_for_ping(address: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    with redis.Redis(host=address, port=6379, socket_connect_timeout=0.5) as client:
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, f"no node on {address}:6379"
                time.sleep(0.05)
