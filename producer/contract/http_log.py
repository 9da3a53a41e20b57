"""How an aiohttp server of Sluice's (the dashboard, a worker's health server) logs a request
it cannot parse: in one line, not a traceback. aiohttp is not imported here: the producer alone
does not need it; its parser's errors are known by their class's name."""

from __future__ import annotations

import logging


class BadRequestLine(logging.Filter):
    """A request aiohttp could not parse (bytes that are not HTTP, a bad character in the
    path) is the client's fault: one line saying what was wrong, not aiohttp's traceback, so
    no one can fill the log with tracebacks by sending garbage."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if any(kind.__name__ == "HttpProcessingError" for kind in type(exc).__mro__):
            what = " ".join(str(getattr(exc, "message", exc)).split())[:200]
            code = getattr(exc, "code", 400)
            record.msg, record.args = "%s: %d %s", (record.getMessage(), code, what)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def server_logger(name: str) -> logging.Logger:
    """The logger an HTTP server (the dashboard's, a worker's health server) writes its
    errors to, a request it cannot parse in one line."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, BadRequestLine) for f in logger.filters):
        logger.addFilter(BadRequestLine())
    return logger
