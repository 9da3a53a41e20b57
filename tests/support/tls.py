"""A TLS-enabled redis-server with an ACL user, and the certificates it needs (openssl CLI)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.servers import Server, flags, redis_server_binary

USER, PASSWORD = "sluice", "s3cret-pw"


def tls_unavailable_reason() -> str | None:
    """Why the TLS tests cannot run here, or None if they can."""
    if redis_server_binary() is None:
        return "no redis-server binary (the embedded Valkey has no TLS); .ci/run installs it"
    if shutil.which("openssl") is None:
        return "no openssl command to make test certificates"
    return None


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory: Path) -> Path:
    """A CA, a server certificate for DNS:localhost only, and a client certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    authority = "req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ca.key -out ca.crt"
    _openssl(*authority.split(), "-subj", "/CN=Test CA", cwd=directory)
    for name, ext in (("server", "subjectAltName=DNS:localhost"), ("client", "")):
        request = f"req -newkey rsa:2048 -nodes -subj /CN={name} -keyout {name}.key -out {name}.csr"
        _openssl(*request.split(), cwd=directory)
        (directory / f"{name}.ext").write_text(ext + "\n")
        signed = f"x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2"
        _openssl(*signed.split(), *f"-out {name}.crt -extfile {name}.ext".split(), cwd=directory)
    return directory


def tls_server(directory: Path, certs: Path) -> Server:
    """redis-server on TLS only, default user off, one ACL user with a password."""
    binary = redis_server_binary()
    assert binary is not None
    server = Server(binary, directory)
    tls = {
        "port": "0",
        "tls-port": str(server.port),
        "tls-cert-file": str(certs / "server.crt"),
        "tls-key-file": str(certs / "server.key"),
        "tls-ca-cert-file": str(certs / "ca.crt"),
        "tls-auth-clients": "optional",
    }
    users = f"--user default off --user {USER} on >{PASSWORD} ~* &* +@all".split()
    server.extra_args = [*flags(tls), *users]
    server.client_options = {
        "host": "localhost",
        "ssl": True,
        "ssl_ca_certs": str(certs / "ca.crt"),
        "username": USER,
        "password": PASSWORD,
    }
    return server
