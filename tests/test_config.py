"""A bad setting stops start-up with a message naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from producer import ClientSettings, ConfigError
from producer.contract.settings import load_settings
from tests.conftest import worker_env
from tests.support.servers import Server
from worker.settings import WorkerConfig, allow_entry_problem, root_problem

ALLOW = "invalid setting SLUICE_FETCH_ALLOW:"
NOT_ALLOWED = "is not a CIDR network, IP address or host name"
ROOTS = "invalid setting SLUICE_FILE_ROOTS:"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SLUICE_POOL_SIZE", "0", "invalid setting SLUICE_POOL_SIZE"),
        ("SLUICE_FETCH_TIMEOUT_S", "soon", "invalid setting SLUICE_FETCH_TIMEOUT_S"),
        ("SLUICE_REDIS_URL", "http://x", "invalid setting SLUICE_REDIS_URL"),
        ("SLUICE_LOG_FORMAT", "xml", "invalid setting SLUICE_LOG_FORMAT"),
        ("SLUICE_POOL_SIZ", "2", "unknown setting SLUICE_POOL_SIZ; did you mean SLUICE_POOL_SIZE?"),
        # the dashboard's settings are its own: a worker given one is told so
        ("SLUICE_DASHBOARD_TOKEN", "0123456789abcdef", "unknown setting SLUICE_DASHBOARD_TOKEN"),
        ("SLUICE_PIPELINES", "no_such_module", "cannot import 'no_such_module'"),
        ("SLUICE_FETCH_ALLOW", "10.0.0.0/33", f"{ALLOW} '10.0.0.0/33' {NOT_ALLOWED}: "),
        ("SLUICE_FETCH_ALLOW", "127.0.0.0/8,*", f"{ALLOW} '*' {NOT_ALLOWED} ("),
        ("SLUICE_FETCH_ALLOW", "*.example.com", f"{ALLOW} '*.example.com' {NOT_ALLOWED} ("),
        (
            "SLUICE_FETCH_ALLOW",
            "files.internal:8080",
            f"{ALLOW} 'files.internal:8080' {NOT_ALLOWED}",
        ),
        ("SLUICE_FETCH_ALLOW", "10.0.0.256", f"{ALLOW} '10.0.0.256' {NOT_ALLOWED}"),
        ("SLUICE_FILE_ROOTS", "/nonexistent", f"{ROOTS} '/nonexistent' does not exist"),
        ("SLUICE_REDIS_SENTINELS", "127.0.0.1:26379", "invalid setting SLUICE_REDIS_SENTINELS"),
        ("SLUICE_REDIS_MASTER_NAME", "mymaster", "invalid setting SLUICE_REDIS_MASTER_NAME"),
        ("SLUICE_QUEUES", "high,Bulk Jobs", "invalid setting SLUICE_QUEUES: 'Bulk Jobs' is not"),
        ("SLUICE_QUEUES", ",", "invalid setting SLUICE_QUEUES: name at least one queue"),
        (
            "SLUICE_WEBHOOK_URL",
            "https://hooks.example.com/sluice",
            "invalid setting SLUICE_WEBHOOK_SECRET: needed with SLUICE_WEBHOOK_URL",
        ),
        ("SLUICE_WEBHOOK_URL", "ftp://x/y", "invalid setting SLUICE_WEBHOOK_URL: must be an http"),
        ("SLUICE_WEBHOOK_SECRET", "short", "invalid setting SLUICE_WEBHOOK_SECRET: must be at"),
        ("SLUICE_WEBHOOK_MAX_ATTEMPTS", "0", "invalid setting SLUICE_WEBHOOK_MAX_ATTEMPTS"),
        # durations that overflowed into a traceback (at start-up, or at a job's ending)
        ("SLUICE_LEASE_S", "inf", "invalid setting SLUICE_LEASE_S: Input should be less"),
        ("SLUICE_POLL_DELAY_S", "1e308", "invalid setting SLUICE_POLL_DELAY_S: Input should"),
        ("SLUICE_RESULT_TTL_S", "99999999999999999999", "invalid setting SLUICE_RESULT_TTL_S"),
        # each pool process maps (in flight + 1) x this: past 64 bits an OverflowError
        ("SLUICE_TRANSFORM_BATCH_BYTES", "9" * 23, "invalid setting SLUICE_TRANSFORM_BATCH_BYTES"),
        ("SLUICE_TRANSFORM_BATCH_BYTES", str(2**30 + 1), "SLUICE_TRANSFORM_BATCH_BYTES: Input"),
        # bytes that are not UTF-8 (read as lone surrogates): a traceback at the first write
        ("SLUICE_WORKER_NAME", "w\udcff", "invalid setting SLUICE_WORKER_NAME: holds bytes that"),
    ],
)
def test_bad_setting_stops_worker(
    server: Server, tmp_path: Path, name: str, value: str, message: str
) -> None:
    """The worker exits 2 at once, naming the setting, without a traceback."""
    env = worker_env(server.url, "cfg", tmp_path)
    env[name] = value
    done = subprocess.run(
        [sys.executable, "-m", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_secrets_are_redacted_in_errors(server: Server, tmp_path: Path) -> None:
    """A bad Redis URL's password never appears in the error."""
    env = worker_env(server.url, "cfg", tmp_path)
    env["SLUICE_REDIS_URL"] = "http://user:hunter2@host"
    done = subprocess.run(
        [sys.executable, "-m", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "hunter2" not in done.stderr


def test_dotenv_file_is_read(server: Server, tmp_path: Path) -> None:
    """Settings in a .env file in the working directory apply; a bad one there is named."""
    env = worker_env(server.url, "cfg", tmp_path)
    del env["SLUICE_POOL_SIZE"]
    (tmp_path / ".env").write_text("SLUICE_POOL_SIZE=-3\n")
    done = subprocess.run(
        [sys.executable, "-m", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "invalid setting SLUICE_POOL_SIZE" in done.stderr
    assert "-3" in done.stderr


def test_a_file_root_that_is_a_file_stops_worker(server: Server, tmp_path: Path) -> None:
    """A root that is a file, not a directory, is refused at start-up, naming it."""
    env = worker_env(server.url, "cfg", tmp_path)
    (tmp_path / "a-file").write_text("x")
    env["SLUICE_FILE_ROOTS"] = f"{tmp_path},{tmp_path / 'a-file'}"
    done = subprocess.run(
        [sys.executable, "-m", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert f"{ROOTS} '{tmp_path / 'a-file'}' is not a directory" in done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every directory")
def test_an_unreadable_file_root_is_refused(tmp_path: Path) -> None:
    """A root this user cannot list is refused, naming it."""
    root = tmp_path / "locked"
    root.mkdir(mode=0)
    assert root_problem(str(root)) == f"{str(root)!r} cannot be read by this user"


def test_the_log_level_is_read_in_either_case(tmp_path: Path) -> None:
    """SLUICE_LOG_LEVEL=WARNING, as Python's logging spells it, is warning; a level that is
    none is still refused."""
    assert WorkerConfig(_env_file=None, log_level="WARNING").log_level == "warning"
    with pytest.raises(ValueError, match="log_level"):
        WorkerConfig(_env_file=None, log_level="LOUD")


GOOD_ALLOW = ["127.0.0.0/8", "10.0.0.1", "[::1]", "fd00::/8", "localhost", "files.internal"]
GOOD_ALLOW += ["files-server", "minio_1", "example.com."]


@pytest.mark.parametrize("entry", GOOD_ALLOW)
def test_good_fetch_allow_entries_pass(entry: str, tmp_path: Path) -> None:
    """Networks, addresses and host names (single labels, '_', a trailing dot) are kept."""
    assert allow_entry_problem(entry) is None
    config = WorkerConfig(_env_file=None, fetch_allow=[entry], file_roots=[str(tmp_path)])
    assert config.fetch_allow == [entry]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"redis_sentinels": "10.0.0.5:26379"}, "SLUICE_REDIS_MASTER_NAME: .*needed with"),
        ({"redis_sentinels": "10.0.0.5", "redis_master_name": "m"}, "SENTINELS: .*not host:port"),
        ({"redis_sentinels": "h:0", "redis_master_name": "m"}, "SENTINELS: .*not host:port"),
        (
            {"redis_url": "redis://h", "redis_sentinels": "h:26379", "redis_master_name": "m"},
            "SLUICE_REDIS_SENTINELS: .*not both",
        ),
        ({"redis_url": "redis+sentinel://h:26379/m"}, "SLUICE_REDIS_URL: .*SLUICE_REDIS_SENTINELS"),
        ({"redis_master_name": "m"}, "SLUICE_REDIS_MASTER_NAME: .*only used with"),
        ({"redis_sentinel_password": "pw-x"}, "SLUICE_REDIS_SENTINEL_PASSWORD: .*only used with"),
        ({"redis_url": "redis://h", "redis_tls": "true"}, "SLUICE_REDIS_TLS: .*rediss://"),
        ({"redis_url": "redis://:pw-x@h", "redis_password": "pw-y"}, "PASSWORD: .*one place"),
        ({"redis_password": "pw-x"}, "SLUICE_REDIS_PASSWORD: .*no server to use it with"),
        ({"redis_wait_replicas": "-1"}, "SLUICE_REDIS_WAIT_REPLICAS"),
    ],
)
def test_bad_redis_settings_are_named(values: dict[str, str], message: str) -> None:
    """Each inconsistent Redis or Sentinel setting is refused naming it; no password shows."""
    with pytest.raises(ConfigError, match=message) as err:
        load_settings(ClientSettings, _env_file=None, **values)
    assert "pw-x" not in str(err.value) and "pw-y" not in str(err.value)


def test_sentinel_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sentinel addresses (IPv6 too) and credentials come from SLUICE_* variables."""
    monkeypatch.setenv("SLUICE_REDIS_SENTINELS", "10.0.0.5:26379, [::1]:26380")
    monkeypatch.setenv("SLUICE_REDIS_MASTER_NAME", "mymaster")
    monkeypatch.setenv("SLUICE_REDIS_SENTINEL_PASSWORD", "pw-x")
    settings = load_settings(ClientSettings, _env_file=None)
    assert settings.sentinel_addresses == [("10.0.0.5", 26379), ("::1", 26380)]
    assert not settings.embedded
    assert settings.redis_sentinel_password is not None
    assert settings.redis_sentinel_password.get_secret_value() == "pw-x"


def test_every_duration_setting_is_finite_and_at_most_a_year() -> None:
    """Each setting in seconds (and the WAIT timeout in ms) refuses inf, nan and past a
    year, naming itself: each becomes milliseconds for Redis or a timer, where they overflow."""
    names = [
        name
        for name, info in WorkerConfig.model_fields.items()
        if name.endswith(("_s", "_ms")) and info.annotation in (int, float)
    ]
    assert len(names) > 10
    for name in names:
        year = 365 * 86400 * (1000 if name.endswith("_ms") else 1)
        for value in ("inf", "nan", "1e308", str(year + 1)):
            with pytest.raises(ConfigError, match=f"invalid setting SLUICE_{name.upper()}:"):
                load_settings(WorkerConfig, _env_file=None, **{name: value})
    assert load_settings(WorkerConfig, _env_file=None, lease_s=365 * 86400).lease_s == 365 * 86400


def test_every_text_setting_refuses_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    """A setting given bytes that are not UTF-8 is refused naming it, but for those that
    name files (a file name may be any bytes): the worker name, the metrics host, a password
    or the webhook secret went on as lone surrogates no encoder takes (a traceback later)."""
    bad = "x\udcff" * 8  # 16 characters: long enough for a secret
    paths = WorkerConfig.path_settings
    assert {"data_dir", "file_roots", "redis_ca_file"} <= paths
    for name in set(WorkerConfig.model_fields) - paths:
        with pytest.raises(ConfigError, match=f"SLUICE_{name.upper()}: .*not UTF-8"):
            load_settings(WorkerConfig, _env_file=None, **{name: bad})
    odd = tmp_path / os.fsdecode(b"\xff")
    odd.mkdir()
    config = load_settings(WorkerConfig, _env_file=None, data_dir=odd, file_roots=str(odd))
    assert config.file_root_paths == [odd]
