"""Redis Sentinel for tests: a primary, a replica and three sentinels on loopback ports
(Debian's redis-server and redis-sentinel), tuned so that a failover takes a second or two.

The sentinels judge a server down after DOWN_AFTER_MS without an answer; the group is
"settled" when every sentinel names the same primary, sees the other server as its live
replica and knows the other two sentinels, and the replica's link to the primary is up:
only then can the next failover be asked for.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tests.support.processes import terminate
from tests.support.servers import Server, flags, free_port, redis_server_binary

MASTER_NAME = "sluice-test"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000
SENTINELS = 3
QUORUM = 2


def sentinel_binary() -> str | None:
    """Debian's redis-sentinel, if installed."""
    return shutil.which("redis-sentinel")


def sentinel_unavailable_reason() -> str | None:
    """Why the Sentinel tests cannot run here, or None if they can."""
    if redis_server_binary() is None or sentinel_binary() is None:
        return "no redis-server and redis-sentinel binaries; .ci/run installs them"
    return None


# quick replication: a replica (or a demoted primary) catches up without a disk round trip
DATA_ARGS = flags(
    {"repl-diskless-sync": "yes", "repl-diskless-sync-delay": "0", "repl-ping-replica-period": "1"}
)


@dataclass(frozen=True)
class Secured:
    """TLS for every connection (``certs`` from tests.support.tls: a CA and a certificate for
    DNS:localhost, so everything is named localhost) and passwords for the data servers and
    the sentinels."""

    certs: Path
    password: str = "data-pw-7"
    sentinel_password: str = "sentinel-pw-7"

    def tls_lines(self, port: int) -> list[str]:
        c = self.certs
        return [
            "port 0",
            f"tls-port {port}",
            f"tls-cert-file {c / 'server.crt'}",
            f"tls-key-file {c / 'server.key'}",
            f"tls-ca-cert-file {c / 'ca.crt'}",
            "tls-auth-clients optional",
            "tls-replication yes",
        ]

    def server_args(self, port: int) -> list[str]:
        args = []
        for line in self.tls_lines(port):  # the same settings as command-line arguments
            name, value = line.split(" ", 1)
            args += [f"--{name}", value]
        auth = {"requirepass": self.password, "masterauth": self.password}
        return [*args, *flags({**auth, "replica-announce-ip": "localhost"})]

    def sentinel_lines(self, port: int) -> list[str]:
        return [
            *self.tls_lines(port),
            f"requirepass {self.sentinel_password}",
            f"sentinel sentinel-pass {self.sentinel_password}",
            "sentinel resolve-hostnames yes",
            "sentinel announce-hostnames yes",
            f"sentinel auth-pass {MASTER_NAME} {self.password}",
        ]

    def client_options(self, password: str) -> dict[str, Any]:
        return {
            "host": "localhost",
            "ssl": True,
            "ssl_ca_certs": str(self.certs / "ca.crt"),
            "password": password,
        }


@dataclass
class SentinelProcess:
    """One redis-sentinel on a free loopback port, its config file in its own directory."""

    directory: Path
    secured: Secured | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self, host: str, primary_port: int) -> SentinelProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "sentinel.conf"
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            "daemonize no",
            f"dir {self.directory}",
            f"logfile {self.directory / 'sentinel.log'}",
            *(self.secured.sentinel_lines(self.port) if self.secured else []),
            f"sentinel monitor {MASTER_NAME} {host} {primary_port} {QUORUM}",
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {MASTER_NAME} 1",
        ]
        config.write_text("\n".join(lines) + "\n")
        binary = sentinel_binary()
        assert binary is not None
        self.process = subprocess.Popen(
            [binary, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        return self

    def client(self) -> redis.Redis:
        options = (
            self.secured.client_options(self.secured.sentinel_password) if self.secured else {}
        )
        return redis.Redis(port=self.port, socket_timeout=2, decode_responses=True, **options)

    def stop(self) -> None:
        terminate(self.process)
        self.process = None


@dataclass
class SentinelGroup:
    """A primary, a replica and three sentinels watching them, all on loopback."""

    directory: Path
    secured: Secured | None = None
    servers: list[Server] = field(default_factory=list)
    sentinels: list[SentinelProcess] = field(default_factory=list)

    @property
    def host(self) -> str:
        """The name every server and sentinel goes by (localhost when certificates say so)."""
        return "localhost" if self.secured else "127.0.0.1"

    @property
    def addresses(self) -> str:
        """The sentinels as SLUICE_REDIS_SENTINELS wants them."""
        return ",".join(f"{self.host}:{s.port}" for s in self.sentinels)

    def start(self) -> SentinelGroup:
        primary = self._server("data-0")
        self.servers = [primary.start()]
        replica = self._server("data-1", replica_of=primary)
        self.servers.append(replica.start())
        self.sentinels = [
            SentinelProcess(self.directory / f"sentinel-{n}", self.secured).start(
                self.host, primary.port
            )
            for n in range(SENTINELS)
        ]
        self.wait_settled()
        return self

    def _server(self, name: str, port: int = 0, replica_of: Server | None = None) -> Server:
        binary = redis_server_binary()
        assert binary is not None
        server = Server(binary, self.directory / name, port=port or free_port())
        self._configure(server, replica_of)
        return server

    def _configure(self, server: Server, replica_of: Server | None) -> None:
        server.extra_args = list(DATA_ARGS)
        if self.secured:
            server.extra_args += self.secured.server_args(server.port)
            server.client_options = self.secured.client_options(self.secured.password)
        if replica_of is not None:
            server.extra_args += ["--replicaof", self.host, str(replica_of.port)]

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.stop()

    def primary(self) -> Server:
        """The server the sentinels name as primary now."""
        with self.sentinels[0].client() as client:
            _host, port = client.sentinel_get_master_addr_by_name(MASTER_NAME)
        return self.by_port(int(port))

    def by_port(self, port: int) -> Server:
        [server] = [s for s in self.servers if s.port == port]
        return server

    def replica_of(self, primary: Server) -> Server:
        [other] = [s for s in self.servers if s is not primary]
        return other

    def failover(self) -> None:
        """SENTINEL FAILOVER: promote the replica now, as an operator would for maintenance."""
        with self.sentinels[0].client() as client:
            client.sentinel_failover(MASTER_NAME)

    def kill_primary(self) -> Server:
        """SIGKILL the primary; the sentinels promote the replica once they agree it is down."""
        victim = self.primary()
        victim.kill()
        return victim

    def restart_as_replica(self, server: Server) -> None:
        """Start a killed server again, as a replica of the primary the sentinels name now."""
        primary = self.primary()
        assert primary is not server, "the sentinels still name the killed server"
        self._configure(server, replica_of=primary)
        server.start()

    def wait_for_new_primary(self, old: Server, timeout_s: float = 30.0) -> Server:
        """Wait until every sentinel names a primary other than ``old``; that primary."""
        wait_until(lambda: self._agreed_primary() not in (None, old.port), timeout_s, self._state)
        return self.primary()

    def wait_settled(self, timeout_s: float = 60.0) -> None:
        """Wait until a failover could be asked for again (see the module's docstring)."""
        wait_until(self._settled, timeout_s, self._state)

    def _agreed_primary(self) -> int | None:
        ports = set()
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as client:
                    ports.add(int(client.sentinel_get_master_addr_by_name(MASTER_NAME)[1]))
            except (redis.RedisError, TypeError):
                return None
        return ports.pop() if len(ports) == 1 else None

    def _settled(self) -> bool:
        port = self._agreed_primary()
        if port is None:
            return False
        replica = self.replica_of(self.by_port(port))
        try:
            for sentinel in self.sentinels:
                with sentinel.client() as client:
                    master = client.sentinel_master(MASTER_NAME)
                    replicas = client.sentinel_slaves(MASTER_NAME)
                if master["num-other-sentinels"] != SENTINELS - 1:
                    return False
                if master["is_sdown"] or master["is_odown"]:
                    return False
                live = [r for r in replicas if not (r["is_sdown"] or r["is_odown"])]
                if [r["port"] for r in live] != [replica.port]:
                    return False
            options: dict[str, Any] = {"socket_timeout": 2, **replica.client_options}
            with redis.Redis(port=replica.port, **options) as client:
                info = client.info("replication")
        except redis.RedisError:
            return False
        return bool(info.get("master_port") == port and info.get("master_link_status") == "up")

    def _state(self) -> str:
        lines = []
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as client:
                    master = client.sentinel_master(MASTER_NAME)
                    replicas = client.sentinel_slaves(MASTER_NAME)
                lines.append(
                    f"sentinel {sentinel.port}: primary {master['port']} flags {master['flags']}"
                    f" others {master['num-other-sentinels']} replicas "
                    f"{[(r['port'], r['flags']) for r in replicas]}"
                )
            except redis.RedisError as exc:
                lines.append(f"sentinel {sentinel.port}: {exc}")
        return "\n".join(lines)


def wait_until(check: Callable[[], bool], timeout_s: float, state: Callable[[], str]) -> None:
    """Poll ``check`` until it holds; past the deadline, fail showing ``state()``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"Sentinel group not ready after {timeout_s} s:\n{state()}")
        time.sleep(0.05)
