"""The server's log configuration: uvicorn's own text lines, or one JSON object per line.

``OKAP_LOG_FORMAT=json`` gives every line as an object with ``time``, ``level``, ``logger``
and ``message`` (and ``exc_info`` for a traceback); an access line adds ``client``,
``method``, ``path`` and ``status``. The redaction is the same as in text
(``proxy/redaction.py``): its filter rewrites a record's message and arguments before any
handler formats them, on the URL loggers as in text and on the JSON handlers too.
The vault's own loggers (``okap.*``) log at ``OKAP_LOG_LEVEL``; other libraries' only
warnings and worse (httpx would otherwise log each upstream call).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from okap_server.settings import Settings

FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
RENAMED = {"asctime": "time", "levelname": "level", "name": "logger"}


class JsonLines(JsonFormatter):
    """One JSON object per record, with an ISO 8601 UTC time."""

    def __init__(self) -> None:
        super().__init__(FIELDS, rename_fields=RENAMED, timestamp=False)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AccessJsonLines(JsonLines):
    """uvicorn's access line, its parts as fields (its arguments are client address,
    method, path with query, HTTP version and status: redacted before this sees them)."""

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, _, status = args
            log_data.update(client=client, method=method, path=path, status=status)


def log_config(settings: Settings) -> dict[str, Any] | None:
    """uvicorn's ``log_config`` (picklable: it reaches ``--workers`` processes): None keeps
    uvicorn's text lines."""
    if settings.log_format != "json":
        return None
    here = __name__
    stream = "logging.StreamHandler"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "okap_server.proxy.redaction.RedactSecrets"}},
        "formatters": {
            "json": {"()": f"{here}.JsonLines"},
            "access": {"()": f"{here}.AccessJsonLines"},
        },
        "handlers": {
            "default": {
                "class": stream,
                "formatter": "json",
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": stream,
                "formatter": "access",
                "filters": ["redact"],
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "okap": {"level": settings.log_level},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }
