"""Keeping okap tokens and keys out of log lines the vault does not write itself.

Some clients send their credential in the URL (Gemini's ``?key=``), and the server's access
log prints URLs. An OKAP poll URL (``/okap/authorize/{handle}``) is itself a secret: its
handle collects the token. This filter rewrites such records before any handler sees them.
"""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"okap_[0-9A-Za-z]{20,}")
_QUERY_KEY = re.compile(r"([?&](?:key|api_key|token|access_token)=)[^&\s\"']+", re.IGNORECASE)
_POLL_HANDLE = re.compile(r"(/okap/authorize/)[^/?#\s\"']+")

# The loggers that print request URLs.
URL_LOGGERS: tuple[str, ...] = ("uvicorn.access", "uvicorn.error", "uvicorn")


def redact(text: str) -> str:
    text = _POLL_HANDLE.sub(r"\1[redacted]", text)
    return _QUERY_KEY.sub(r"\1[redacted]", _TOKEN.sub("okap_[redacted]", text))


class RedactSecrets(logging.Filter):
    """Rewrites credentials in a record's message and string arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install(filter_: RedactSecrets) -> None:
    for name in URL_LOGGERS:
        logging.getLogger(name).addFilter(filter_)


def uninstall(filter_: RedactSecrets) -> None:
    for name in URL_LOGGERS:
        logging.getLogger(name).removeFilter(filter_)
