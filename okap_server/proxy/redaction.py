"""Keeping okap tokens and keys out of log lines the vault does not write itself.

Some clients send their credential in the URL (Gemini's ``?key=``), and the server's access
log prints URLs. An OKAP poll URL (``/okap/authorize/{handle}``) is itself a secret: its
handle collects the token. This filter rewrites such records before any handler sees them.

The token is read from the query by :func:`query_params` (the front door's one parser), so
the redaction decodes each parameter exactly as it does: percent-escapes in names and
values, ``+`` as a space. It then redacts a value whose decoded name is a credential's (in
any case) or whose decoded value holds an ``okap_`` token, and splits on ``;`` as well as
``&``, so a spelling the parser would read a token from (``?%6Bey=okap_...``,
``?key=%6Fkap_...``, a repeated ``key``) is never printed, whatever it looks like raw.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, unquote

# okap_ proxy tokens and okapm_ management tokens (issue 20) alike.
_TOKEN = re.compile(r"(okapm?_)[0-9A-Za-z]{20,}")
_MARKER = re.compile(r"okapm?_")
_QUERY = re.compile(r"\?([^\s\"'#]*)")
_PARAM_SEPARATOR = re.compile(r"([&;])")
CREDENTIAL_NAMES = frozenset({"key", "api_key", "apikey", "token", "access_token", "api-key"})
REDACTED = "[redacted]"
_PIECES = re.compile(r"([\s/?&;=]+)")
_DECODE_ROUNDS = 4
_POLL_HANDLE = re.compile(r"(/okap/authorize/)[^/?#\s\"']+")

# The loggers that print request URLs.
URL_LOGGERS: tuple[str, ...] = ("uvicorn.access", "uvicorn.error", "uvicorn")


def query_params(query: str) -> list[tuple[str, str]]:
    """A request's query parameters, decoded: the one parser for tokens in URLs."""
    return parse_qsl(query, keep_blank_values=True)


def _decoded(part: str) -> str:
    """As :func:`query_params` decodes a name or a value (``parse_qsl``'s own steps)."""
    return unquote(part.replace("+", " "), errors="replace")


def _fully_decoded(text: str) -> str:
    """Percent-decoded until it stops changing (a few rounds), for what other parsers,
    the provider's or a client's, might decode once more."""
    for _ in range(_DECODE_ROUNDS):
        decoded = _decoded(text)
        if decoded == text:
            break
        text = decoded
    return text


def _redact_param(param: str) -> str:
    name, equals, value = param.partition("=")
    if not equals:
        return REDACTED if _MARKER.search(_fully_decoded(name)) else param
    if _decoded(name).strip().lower() in CREDENTIAL_NAMES or _MARKER.search(_fully_decoded(value)):
        return f"{name}={REDACTED}"
    return param


def _redact_query(match: re.Match[str]) -> str:
    parts = _PARAM_SEPARATOR.split(match.group(1))
    return "?" + "".join(p if p in ("&", ";") else _redact_param(p) for p in parts)


def _redact_encoded(text: str) -> str:
    """A percent-encoded token outside a query (a path segment): the piece that decodes
    to one. Pieces are split where a token cannot be (``/``, ``?``, ``&``, ``;``, ``=``,
    spaces), so the rest of the line stays readable."""
    pieces = _PIECES.split(text)
    return "".join(
        REDACTED if "%" in piece and _TOKEN.search(_fully_decoded(piece)) else piece
        for piece in pieces
    )


def redact(text: str) -> str:
    if "/okap/authorize/" in text:
        text = _POLL_HANDLE.sub(r"\1" + REDACTED, text)
    if "?" in text:
        text = _QUERY.sub(_redact_query, text)
    if "%" in text:
        text = _redact_encoded(text)
    if _MARKER.search(text):
        text = _TOKEN.sub(lambda m: m.group(1) + REDACTED, text)
    return text


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
