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

import redis

from tests.support.processes import terminate
from tests.support.servers import Server, free_port, redis_server_binary

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
DATA_ARGS = ["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
             "--repl-ping-replica-period", "1"]  # fmt: skip


@dataclass
class SentinelProcess:
    """One redis-sentinel on a free loopback port, its config file in its own directory."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self, primary_port: int) -> SentinelProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "sentinel.conf"
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndaemonize no\ndir {self.directory}\n"
            f"logfile {self.directory / 'sentinel.log'}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} {QUORUM}\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        binary = sentinel_binary()
        assert binary is not None
        self.process = subprocess.Popen(
            [binary, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)

    def stop(self) -> None:
        terminate(self.process)
        self.process = None


@dataclass
class SentinelGroup:
    """A primary, a replica and three sentinels watching them, all on loopback."""

    directory: Path
    servers: list[Server] = field(default_factory=list)
    sentinels: list[SentinelProcess] = field(default_factory=list)

    @property
    def addresses(self) -> str:
        """The sentinels as SLUICE_REDIS_SENTINELS wants them."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def start(self) -> SentinelGroup:
        binary = redis_server_binary()
        assert binary is not None
        primary = Server(binary, self.directory / "data-0", extra_args=list(DATA_ARGS))
        self.servers = [primary.start()]
        replica = Server(binary, self.directory / "data-1", extra_args=list(DATA_ARGS))
        replica.extra_args += ["--replicaof", "127.0.0.1", str(primary.port)]
        self.servers.append(replica.start())
        self.sentinels = [
            SentinelProcess(self.directory / f"sentinel-{n}").start(primary.port)
            for n in range(SENTINELS)
        ]
        self.wait_settled()
        return self

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
        server.extra_args = [*DATA_ARGS, "--replicaof", "127.0.0.1", str(primary.port)]
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
            with redis.Redis(port=replica.port, socket_timeout=2) as client:
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
