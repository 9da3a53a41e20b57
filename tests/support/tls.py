"""A TLS-enabled redis-server with an ACL user, and the certificates it needs (openssl CLI)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.servers import Server, redis_server_binary

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
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Test CA",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=directory)  # fmt: skip
    for name, ext in (("server", "subjectAltName=DNS:localhost"), ("client", "")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)  # fmt: skip
        (directory / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", f"{name}.crt",
                 "-extfile", f"{name}.ext", cwd=directory)  # fmt: skip
    return directory


def tls_server(directory: Path, certs: Path) -> Server:
    """redis-server on TLS only, default user off, one ACL user with a password."""
    binary = redis_server_binary()
    assert binary is not None
    server = Server(binary, directory)
    server.extra_args = [
        "--port", "0", "--tls-port", str(server.port),
        "--tls-cert-file", str(certs / "server.crt"), "--tls-key-file", str(certs / "server.key"),
        "--tls-ca-cert-file", str(certs / "ca.crt"), "--tls-auth-clients", "optional",
        "--user", "default", "off",
        "--user", USER, "on", f">{PASSWORD}", "~*", "&*", "+@all",
    ]  # fmt: skip
    server.client_options = {
        "host": "localhost", "ssl": True, "ssl_ca_certs": str(certs / "ca.crt"),
        "username": USER, "password": PASSWORD,
    }  # fmt: skip
    return server
