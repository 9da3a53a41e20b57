"""Settings shared by every Sluice process: where Redis is, the namespace, enqueue limits.

Read from ``SLUICE_*`` environment variables and a ``.env`` file. Each part extends these with
its own, and reads only those: the worker (`worker.settings.WorkerConfig`) and the dashboard
(`producer.dashboard.settings.DashboardSettings`).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from redis.asyncio.connection import parse_url

from producer.contract.errors import ConfigError, problems
from producer.contract.events import DEFAULT_EVENTS_MAXLEN
from producer.contract.keys import MAX_SHARDS, Keys
from producer.contract.redaction import redact_url

ENV_PREFIX = "SLUICE_"
MiB = 1024 * 1024
# The longest any setting in seconds may be: a year. Each becomes milliseconds for Redis or a
# timer somewhere, where inf, nan or 1e308 would overflow (a worker that crashes at start-up
# or at a job's ending) and an integer past 64 bits is refused by Redis.
MAX_SECONDS = 365 * 86400


ENCODE_HINT = "percent-encode '@', '/', '?' and '#' in a user name or password (e.g. '#' as %23)"


def check_redis_url(url: str) -> None:
    """Refuse a URL redis-py would misread or fail on, in words that never repeat its parts."""
    parts = urlsplit(url)
    if "@" in parts.path + parts.query + parts.fragment:
        raise ValueError(f"has an '@' after the host: {ENCODE_HINT}")
    try:
        parse_url(url)
    except ValueError as exc:
        known = str(exc).startswith("Invalid value for '")  # names the parameter, not its value
        reason = str(exc) if known else f"it cannot be read as a Redis URL; {ENCODE_HINT}"
        raise ValueError(reason) from None


def split_commas(value: object) -> object:
    """A comma-separated setting as a list of its non-empty parts (other values unchanged)."""
    return [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value


# a comma-separated setting: read as the text it is (not JSON), then split
CommaList = Annotated[list[str], NoDecode, BeforeValidator(split_commas)]


class ClientSettings(BaseSettings):
    """What every process needs to know: a producer (client or CLI) and, beside its own, a
    worker and the dashboard."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="ignore",
        validate_default=True,
        use_attribute_docstrings=True,
    )

    redis_url: str | None = None
    """Redis URL (``redis://``, ``rediss://`` or ``unix://``). Unset (and no
    SLUICE_REDIS_SENTINELS): use the embedded server."""
    redis_ca_file: Path | None = None
    """CA bundle to verify a ``rediss://`` server with (default: the system's)."""
    redis_cert_file: Path | None = None
    """Client certificate for TLS client authentication."""
    redis_key_file: Path | None = None
    """Private key of the client certificate."""
    redis_check_hostname: bool = True
    """Check the TLS server's certificate matches its host name."""
    redis_sentinels: CommaList = Field(default_factory=list)
    """Sentinels that name the primary, ``host:port,host:port``; set, the primary is found
    through them and found again after a failover (SLUICE_REDIS_URL must then be unset)."""
    redis_master_name: str | None = None
    """The name the sentinels watch the primary by (their ``sentinel monitor NAME``); needed
    with SLUICE_REDIS_SENTINELS."""
    redis_username: str | None = None
    """ACL user for the data servers (with a URL, this or the URL's user, not both)."""
    redis_password: SecretStr | None = None
    """Password for the data servers (with a URL, this or the URL's password, not both)."""
    redis_tls: bool = False
    """TLS to the data servers the sentinels name (with a URL, say ``rediss://`` instead)."""
    redis_sentinel_username: str | None = None
    """ACL user for the sentinels, if they require one."""
    redis_sentinel_password: SecretStr | None = None
    """Password for the sentinels (their ``requirepass``), if they require one."""
    redis_sentinel_tls: bool = False
    """TLS to the sentinels (checked with SLUICE_REDIS_CA_FILE, as the data servers are)."""
    redis_wait_replicas: int = Field(default=0, ge=0, le=100)
    """Replicas that must confirm each enqueue and each batch of stored records (Redis
    WAIT) before it counts as done; writes are retried until they do (0: do not wait)."""
    redis_wait_timeout_ms: int = Field(default=1000, ge=1, le=MAX_SECONDS * 1000)
    """How long one WAIT for SLUICE_REDIS_WAIT_REPLICAS lasts before the write is tried again."""
    redis_cluster: bool = False
    """SLUICE_REDIS_URL (redis:// or rediss://) names a node of a Redis or Valkey Cluster."""
    shards: int | None = Field(default=None, ge=1, le=MAX_SHARDS)
    """How many hash slots the namespace's queue is spread over (default 1; 16 with
    SLUICE_REDIS_CLUSTER); every client and worker of a namespace must use the same count."""
    namespace: str = Field(default="sluice", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    """Prefix of every Sluice key and of the queue name. Job ids stay unique across namespaces
    sharing one server (arq's own keys are not namespaced)."""
    data_dir: Path = Path(".sluice")
    """Where the embedded server keeps its data and address file."""
    max_queued_jobs: int = Field(default=10_000, ge=0)
    """Cap on jobs waiting in the queue; past it `enqueue` waits (0: no cap)."""
    enqueue_timeout_s: float = Field(default=30.0, ge=0, le=MAX_SECONDS)
    """How long `enqueue` waits for room under the cap before raising QueueFull."""
    max_inputs_per_job: int = Field(default=1_000_000, ge=1)
    """Most inputs one job may carry."""
    max_payload_bytes: int = Field(default=16 * MiB, ge=1024)
    """Largest encoded job envelope (inline inputs and options) accepted at enqueue."""
    max_input_chars: int = Field(default=8192, ge=16)
    """Longest input URI accepted."""
    inline_inputs_max: int = Field(default=1000, ge=0)
    """Jobs with more inputs than this are written in chunks to a Redis list, not inline."""
    result_ttl_s: int = Field(default=7 * 86400, ge=1, le=MAX_SECONDS)
    """How long a finished job's status and results are kept."""
    job_expires_s: int = Field(default=86400, ge=1, le=MAX_SECONDS)
    """How long a queued job may wait before it expires unrun."""
    events_maxlen: int = Field(default=DEFAULT_EVENTS_MAXLEN, ge=0, le=100_000_000)
    """About how many job events the namespace's stream keeps (``{ns}:events``, trimmed
    with ``MAXLEN ~``); a reader further behind misses the oldest (0: write no events)."""

    # settings that name files: a name that is not UTF-8 is a file name like any other
    path_settings: ClassVar[frozenset[str]] = frozenset(
        {"redis_ca_file", "redis_cert_file", "redis_key_file", "data_dir"}
    )

    @field_validator("*", mode="before")
    @classmethod
    def _text_is_utf8(cls, value: Any, info: ValidationInfo) -> Any:
        """A setting read from bytes that are not UTF-8 (which Python reads as lone
        surrogates) is refused, naming it: it would reach Redis, a host name lookup or a
        signature as text no encoder takes, a traceback later on."""
        if info.field_name in cls.path_settings:
            return value
        parts = value if isinstance(value, list) else [value]
        if any(isinstance(part, str) and not is_utf8(part) for part in parts):
            raise ValueError("holds bytes that are not UTF-8 text")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and "sentinel" in value.partition("://")[0]:
            raise ValueError(
                "Sentinel is set with SLUICE_REDIS_SENTINELS and SLUICE_REDIS_MASTER_NAME, "
                "not a URL"
            )
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        if value:
            check_redis_url(value)
        return value or None

    @field_validator("redis_sentinels")
    @classmethod
    def _check_sentinels(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for address in value:
            sentinel_address(address)  # ValueError names the bad one
        if value and info.data.get("redis_url"):
            raise ValueError(
                "set SLUICE_REDIS_URL (one server) or SLUICE_REDIS_SENTINELS (the sentinels "
                "that name the primary), not both"
            )
        return value

    @field_validator("redis_master_name")
    @classmethod
    def _check_master_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and not info.data.get("redis_sentinels", True):
            raise ValueError("only used with SLUICE_REDIS_SENTINELS, which is unset")
        if not value and info.data.get("redis_sentinels"):
            raise ValueError(
                "needed with SLUICE_REDIS_SENTINELS: the name the sentinels watch the primary by"
            )
        return value or None

    @field_validator("redis_password")
    @classmethod
    def _check_password(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        _check_credential(info, urlsplit(info.data.get("redis_url") or "").password is not None)
        return value

    @field_validator("redis_username")
    @classmethod
    def _check_username(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value:
            _check_credential(info, bool(urlsplit(info.data.get("redis_url") or "").username))
        return value or None

    @field_validator("redis_tls")
    @classmethod
    def _check_tls(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("redis_url"):
            raise ValueError("with SLUICE_REDIS_URL, say TLS with a rediss:// URL")
        return value

    @field_validator("redis_sentinel_username", "redis_sentinel_password", "redis_sentinel_tls")
    @classmethod
    def _only_with_sentinels(cls, value: Any, info: ValidationInfo) -> Any:
        if value and not info.data.get("redis_sentinels", True):
            raise ValueError("only used with SLUICE_REDIS_SENTINELS, which is unset")
        return value

    @field_validator("redis_cluster")
    @classmethod
    def _check_cluster(cls, value: bool, info: ValidationInfo) -> bool:
        url = info.data.get("redis_url") or ""
        if value and (info.data.get("redis_sentinels") or not url.startswith("redis")):
            raise ValueError(
                "needs SLUICE_REDIS_URL (redis:// or rediss://, any node of the cluster) and "
                "no SLUICE_REDIS_SENTINELS"
            )
        if value and info.data.get("redis_wait_replicas"):
            raise ValueError("SLUICE_REDIS_WAIT_REPLICAS does not work on a cluster yet: unset it")
        return value

    @property
    def keys(self) -> Keys:
        """The key names of this namespace, in its layout (SLUICE_SHARDS)."""
        shards = self.shards or (16 if self.redis_cluster else 1)
        return Keys(self.namespace, shards, tagged=self.redis_cluster)

    @property
    def embedded(self) -> bool:
        """Neither a URL nor sentinels are set: use the embedded server."""
        return not self.redis_url and not self.redis_sentinels

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [sentinel_address(address) for address in self.redis_sentinels]


def is_utf8(text: str) -> bool:
    """``text`` can be encoded as UTF-8 (it holds no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_credential(info: ValidationInfo, in_url: bool) -> None:
    """A data server's user or password is given once, and only where there is a server."""
    if in_url:
        raise ValueError("SLUICE_REDIS_URL has it already: give it in one place")
    if not info.data.get("redis_url") and not info.data.get("redis_sentinels", True):
        raise ValueError(
            "no server to use it with (the embedded server has no password): set "
            "SLUICE_REDIS_URL or SLUICE_REDIS_SENTINELS"
        )


def sentinel_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for an IPv6 address) as (host, port), or ValueError."""
    host, _, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port (e.g. 10.0.0.5:26379)")
    return host, int(port)


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings, turning a validation error into a ConfigError that names the setting."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc)) from None


def describe_errors(exc: ValidationError) -> str:
    """Each bad setting on a line of its own, named by its variable, with the value it had
    (hidden where it is a secret)."""
    lines = []
    for problem in problems(exc, "", join="_"):
        name, got = ENV_PREFIX + problem.where.upper(), problem.got
        shown = "" if got is None or isinstance(got, dict) else f" (got {_redact(name, got)!r})"
        lines.append(f"invalid setting {name}: {problem.what}{shown}")
    return "\n".join(lines)


def _redact(name: str, value: object) -> object:
    if "TOKEN" in name or "PASSWORD" in name or "SECRET" in name:
        return "***"
    if "URL" in name and isinstance(value, str):
        return redact_url(value)
    return value


def unknown_env_settings(
    cls: type[BaseSettings], environ: dict[str, str] | None = None
) -> list[str]:
    """``SLUICE_*`` variables that name no setting, each with a suggestion where one is close."""
    known = {ENV_PREFIX + name.upper() for name in cls.model_fields}
    problems = []
    for key in sorted(environ if environ is not None else os.environ):
        if key.startswith(ENV_PREFIX) and key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.append(f"unknown setting {key}{hint}")
    return problems
