"""Showing a Redis URL without the credentials in it: in logs, errors and the dashboard."""

from __future__ import annotations

from urllib.parse import unquote_plus

# Query parameters redis-py reads as plain connection settings (numbers, flags): shown as
# given. Every other parameter's value is hidden, whatever its name: redis-py hands unknown
# names to the connection as they are (password=, username=, ssl_password=, ...).
SHOWN_URL_PARAMETERS = frozenset(
    {
        "db",
        "protocol",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "retry_on_timeout",
        "retry_on_error",
        "max_connections",
        "health_check_interval",
        "ssl_check_hostname",
        "ssl_cert_reqs",
        "timeout",
    }
)
HIDDEN = "***"


def redact_url(url: str) -> str:
    """The URL with every credential redis-py could read from it hidden: safe to log or show.

    Hidden: the user information (everything up to the last ``@``, so a password whose
    ``/``, ``?`` or ``#`` was not percent-encoded is hidden too, wherever it cut the URL),
    the value of every query parameter but the plain connection settings, and a fragment.
    """
    scheme, sep, rest = _parts(without_user_info(url, HIDDEN))
    rest, hash_sign, _ = rest.partition("#")
    address, question, query = rest.partition("?")
    shown = scheme + sep + address
    if question:
        shown += "?" + "&".join(_redact_parameter(part) for part in query.split("&"))
    return shown + (f"#{HIDDEN}" if hash_sign else "")


def without_user_info(url: str, hidden: str = "") -> str:
    """The URL with its user information (everything up to the last ``@``: a password with an
    unencoded ``/`` or ``?`` included) dropped, or replaced by ``hidden``."""
    scheme, sep, rest = _parts(url)
    if "@" in rest:
        rest = (f"{hidden}@" if hidden else "") + rest.rpartition("@")[2]
    return scheme + sep + rest


def _parts(url: str) -> tuple[str, str, str]:
    return url.partition("://") if "://" in url else ("", "", url)


def _redact_parameter(part: str) -> str:
    """One ``name=value`` of a query, its value hidden unless the name is a plain setting."""
    name, equals, _ = part.partition("=")
    if equals and unquote_plus(name) in SHOWN_URL_PARAMETERS:
        return part
    return f"{name}={HIDDEN}" if equals else HIDDEN
