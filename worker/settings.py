"""The worker's settings: the producer's, plus pool, stage and limit settings.

Every field is read from ``SLUICE_<FIELD>`` (e.g. ``SLUICE_POOL_SIZE``) or ``.env``.
An unknown ``SLUICE_*`` variable or a bad value stops start-up with a message naming it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from producer.contract.callbacks import callback_url_problem
from producer.contract.errors import ConfigError
from producer.contract.keys import DEFAULT_QUEUE
from producer.contract.models import QUEUE_NAME_PATTERN
from producer.contract.settings import (
    MAX_SECONDS,
    ClientSettings,
    CommaList,
    load_settings,
    unknown_env_settings,
)
from worker.rates import RateRule, parse_rules

MiB = 1024 * 1024
MIN_SECRET_CHARS = 16  # a webhook secret shorter than this is a placeholder, not a key
# one label of a host name; '_' too, as container and cluster-internal names use it
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


class WorkerConfig(ClientSettings):
    """Everything a worker process is configured with."""

    model_config = SettingsConfigDict(
        env_prefix="SLUICE_",
        env_file=".env",
        extra="ignore",
        validate_default=True,
        use_attribute_docstrings=True,
    )

    path_settings = ClientSettings.path_settings | {"file_roots"}

    pipelines: CommaList = Field(default_factory=list)
    """Comma-separated modules to import for user pipelines and fetchers."""
    queues: CommaList = Field(default_factory=lambda: [DEFAULT_QUEUE])
    """Comma-separated names of the queues this worker takes jobs from (``high,default``);
    it takes the earliest-placed work of all of them first (docs/queues.md)."""
    schedules: str = ""
    """Periodic jobs: a JSON list of schedules (``[{"name": "nightly", "pipeline":
    "text-stats", "inputs": [...], "cron": "0 3 * * *"}]``); docs/schedules.md."""
    schedules_module: str | None = None
    """A module whose ``SCHEDULES`` list holds more schedules (`producer.contract.schedules.
    Schedule` objects or dicts); imported at start-up as SLUICE_PIPELINES modules are."""
    pool_size: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=256)
    """Processes in the transform pool (default: the CPU count)."""
    pool_inflight_per_process: int = Field(default=2, ge=1, le=64)
    """Pool calls in flight per pool process; keeps each process fed while results return."""
    transform_batch_items: int = Field(default=16, ge=1, le=10_000)
    """Most inputs sent to the pool in one call; fewer for slow transforms (about 20 ms a call)."""
    transform_batch_bytes: int = Field(default=1 * MiB, ge=1, le=1024 * MiB)
    """Most input bytes sent to the pool in one call (at most 1 GiB: each pool process maps
    memory for its calls in flight, one more than SLUICE_POOL_INFLIGHT_PER_PROCESS, of this
    size each)."""
    max_jobs: int = Field(default=128, ge=1, le=10_000)
    """Units of jobs one worker holds at once (a job of one unit is one); all feed the one
    pipeline."""
    unit_inputs: int = Field(default=100, ge=1, le=100_000)
    """Inputs per unit: a job is split into units of this many, and any worker takes any
    unit, so a big job runs on every live worker at once."""
    fetch_concurrency: int = Field(default=64, ge=1, le=10_000)
    """Fetches in flight at once across all jobs."""
    fetch_per_host: int = Field(default=0, ge=0)
    """Connections per host, to be polite to one server (0: only SLUICE_FETCH_CONCURRENCY)."""
    fetch_rates: CommaList = Field(default_factory=list)
    """Requests per second per host, shared by every worker of the namespace:
    ``host=rate`` or ``host=rate:burst``, comma-separated; a host is exact, ``*.domain`` or
    ``*`` (docs/rate-limits.md). Hosts no rule names are not limited."""
    pipeline_rates: CommaList = Field(default_factory=list)
    """Fetches (inputs) per second per pipeline, shared by every worker of the namespace:
    ``pipeline=rate`` or ``pipeline=rate:burst``, comma-separated; each pipeline named must
    be registered."""
    fetch_timeout_s: float = Field(default=30.0, gt=0, le=MAX_SECONDS)
    """Time allowed for one fetch attempt (each retry and redirect hop gets its own)."""
    fetch_connect_timeout_s: float = Field(default=10.0, gt=0, le=MAX_SECONDS)
    """Time allowed to connect for one fetch."""
    fetch_retries: int = Field(default=2, ge=0, le=20)
    """Retries of a fetch after a transient error (connection error, 5xx, 429)."""
    fetch_backoff_s: float = Field(default=0.2, ge=0, le=MAX_SECONDS)
    """First retry delay; doubles each retry, each pause jittered to between half and all of it
    (a 429's Retry-After wins)."""
    max_fetch_bytes: int = Field(default=64 * MiB, ge=1)
    """Largest body fetched for one input; a bigger one fails that input."""
    fetch_allow: CommaList = Field(default_factory=list)
    """Host names (exact, no wildcards) and CIDR networks the HTTP fetcher may reach besides
    public addresses; an entry that is neither stops start-up."""
    file_roots: CommaList = Field(default_factory=list)
    """Directories ``file://`` inputs may read from (empty: the file scheme is refused); each
    must be a readable directory at start-up."""
    transform_timeout_s: float = Field(default=300.0, gt=0, le=MAX_SECONDS)
    """Longest one input's transform may run; past it its process is killed and the input fails."""
    transform_attempts: int = Field(default=2, ge=1, le=10)
    """Tries of an input whose transform process died or timed out, before it fails."""
    pool_max_tasks: int = Field(default=0, ge=0)
    """Replace a pool process after this many pool calls, for leaky transforms (0: never)."""
    transform_queue_size: int = Field(default=0, ge=0)
    """Fetched items waiting for the pool (0: twice the pool's in-flight calls × batch items)."""
    store_queue_size: int = Field(default=256, ge=1)
    """Transformed items waiting to be stored."""
    store_batch_size: int = Field(default=128, ge=1, le=10_000)
    """Most records written in one Redis round trip."""
    max_inflight_bytes: int = Field(default=256 * MiB, ge=1)
    """Most fetched bytes held in memory across the pipeline."""
    max_result_bytes: int = Field(default=16 * MiB, ge=1)
    """Largest stored record plus binary output for one input."""
    job_timeout_s: float = Field(default=3600.0, gt=0, le=MAX_SECONDS)
    """Longest a job may run before it is marked failed."""
    poll_delay_s: float = Field(default=0.05, gt=0, le=MAX_SECONDS)
    """Longest an idle worker waits before it looks for jobs again; an enqueue by a Client
    (or a push to ``{ns}:wake``) wakes it at once."""
    max_tries: int = Field(default=5, ge=1)
    """Tries of a job before arq gives up on it."""
    retry_backoff_s: float = Field(default=1.0, ge=0, le=MAX_SECONDS)
    """First delay before a job that hit an unexpected error runs again; doubles, each pause
    jittered to between half and all of it."""
    retry_backoff_max_s: float = Field(default=60.0, ge=0, le=MAX_SECONDS)
    """Longest delay between tries of a job."""
    lease_s: float = Field(default=15.0, ge=1, le=MAX_SECONDS)
    """A job whose worker stops renewing its lease this long is taken over by another worker."""
    shutdown_grace_s: float = Field(default=30.0, ge=0, le=MAX_SECONDS)
    """On SIGTERM, time for in-flight inputs to finish before the worker stops at once."""
    worker_name: str | None = None
    """Name in logs and heartbeats (default: host:pid)."""
    embedded_port: int = Field(default=0, ge=0, le=65535)
    """Port of the embedded server (0: a free one)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Least severe log level written."""
    log_format: Literal["auto", "json", "console"] = "auto"
    """Log format: console on a terminal and JSON lines elsewhere (auto), or forced."""
    metrics_port: int = Field(default=0, ge=0, le=65535)
    """Port of the worker's HTTP server: /metrics (Prometheus), /healthz, /readyz (0: none)."""
    metrics_host: str = "0.0.0.0"
    """Address the metrics and health server listens on."""
    webhook_url: str | None = None
    """The namespace's default webhook: POSTed, signed, when a job without a callback URL of
    its own ends (docs/webhooks.md). Needs SLUICE_WEBHOOK_SECRET."""
    webhook_secret: SecretStr | None = None
    """The key of every webhook's HMAC-SHA256 signature (at least 16 characters; the same on
    every worker of the namespace). Without it, webhooks are not sent: they fail, saying so."""
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    """POSTs tried for one job's ending before its delivery is marked failed."""
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=300)
    """Time allowed for one POST to a webhook (connecting, sending, the answer)."""
    webhook_backoff_s: float = Field(default=5.0, ge=0, le=MAX_SECONDS)
    """Pause before the second POST; doubles each try up to 10 minutes, each pause jittered
    to between half and all of it (a receiver's Retry-After wins where it asks for longer)."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, level: object) -> object:
        return level.lower() if isinstance(level, str) else level  # WARNING, as logging spells it

    @field_validator("fetch_allow")
    @classmethod
    def _allow_entries(cls, entries: list[str]) -> list[str]:
        return _each_fine(entries, allow_entry_problem)

    @field_validator("fetch_rates")
    @classmethod
    def _host_rates(cls, entries: list[str]) -> list[str]:
        parse_rules(entries, "host")
        return entries

    @field_validator("pipeline_rates")
    @classmethod
    def _pipeline_rates(cls, entries: list[str]) -> list[str]:
        parse_rules(entries, "pipeline")
        return entries

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, url: str | None) -> str | None:
        problem = callback_url_problem(url) if url else None
        if problem is not None:
            raise ValueError(problem)
        return url or None

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, secret: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if secret is not None and not secret.get_secret_value():
            secret = None
        if secret is None and info.data.get("webhook_url"):
            raise ValueError(
                "needed with SLUICE_WEBHOOK_URL: the key webhooks are signed with (the same "
                "on every worker of the namespace)"
            )
        if secret is not None and len(secret.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(f"must be at least {MIN_SECRET_CHARS} characters")
        return secret

    @field_validator("queues")
    @classmethod
    def _queue_names(cls, names: list[str]) -> list[str]:
        if not names:
            raise ValueError("name at least one queue (the usual one is 'default')")
        for name in names:
            if not re.fullmatch(QUEUE_NAME_PATTERN, name):
                raise ValueError(
                    f"{name!r} is not a queue name: 1-64 lowercase letters, digits, '_' and "
                    "'-', starting with a letter or digit"
                )
        return list(dict.fromkeys(names))

    @field_validator("file_roots")
    @classmethod
    def _roots_are_readable_directories(cls, roots: list[str]) -> list[str]:
        return _each_fine(roots, root_problem)

    @property
    def file_root_paths(self) -> list[Path]:
        return [Path(p).resolve() for p in self.file_roots]

    @property
    def rate_rules(self) -> list[RateRule]:
        """Every rate limit this worker applies: its hosts', then its pipelines'."""
        hosts = parse_rules(self.fetch_rates, "host")
        return hosts + parse_rules(self.pipeline_rates, "pipeline")

    @property
    def pool_inflight(self) -> int:
        return self.pool_size * self.pool_inflight_per_process

    @property
    def transform_queue_bound(self) -> int:
        return self.transform_queue_size or 2 * self.pool_inflight * self.transform_batch_items


def _each_fine(values: list[str], problem_of: Callable[[str], str | None]) -> list[str]:
    """``values``, or ValueError saying what is wrong with the first bad one."""
    for value in values:
        problem = problem_of(value)
        if problem is not None:
            raise ValueError(problem)
    return values


def allow_entry_problem(entry: str) -> str | None:
    """What is wrong with an entry of SLUICE_FETCH_ALLOW, or None: it must be a CIDR network,
    an IP address, or a host name (exact: no wildcards, no port)."""
    bare = entry.strip("[]")
    labels = bare.rstrip(".").split(".")
    if "/" in bare or ":" in bare or all(label.isdigit() for label in labels):
        try:
            ipaddress.ip_network(bare, strict=False)
        except ValueError as exc:
            return f"{entry!r} is not a CIDR network, IP address or host name: {exc}"
        return None
    if len(bare) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels):
        return None
    return (
        f"{entry!r} is not a CIDR network, IP address or host name (a host name is letters, "
        "digits, '-' and '_' in labels joined by '.'; no wildcards, no port)"
    )


def root_problem(root: str) -> str | None:
    """What is wrong with an entry of SLUICE_FILE_ROOTS, or None: it must be a directory this
    user can list and read."""
    try:
        real = Path(root).resolve(strict=True)
    except FileNotFoundError:
        return f"{root!r} does not exist"
    except (OSError, RuntimeError) as exc:
        return f"{root!r} cannot be reached: {getattr(exc, 'strerror', None) or exc}"
    if not real.is_dir():
        return f"{root!r} is not a directory"
    if not os.access(real, os.R_OK | os.X_OK):
        return f"{root!r} cannot be read by this user"
    return None


def load_worker_config(**overrides: object) -> WorkerConfig:
    """The worker's settings, or ConfigError naming every unknown or bad setting."""
    unknown = unknown_env_settings(WorkerConfig)
    if unknown:
        raise ConfigError("\n".join(unknown))
    return load_settings(WorkerConfig, **overrides)
