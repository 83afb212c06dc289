"""Reading a ``multipart/form-data`` body (RFC 7578) as the upstream will, and forwarding
exactly what was read.

The vault reads the ``model`` of an image or audio request (and the other fields it checks
or bills by) from its form. Any way the vault's reading can differ from the upstream's is a
way round the grant: a second ``model`` field, a boundary inside a part, a part encoded in
base64, a ``filename*`` or a charset the other side decodes differently. So the body is
parsed by a real parser (python-multipart, as Starlette uses), every form two readers could
read two ways is refused, and the upstream gets the form re-encoded from the parts the vault
read, under a fresh boundary: it can only read what the vault checked.

The work is linear in the body and bounded, since it runs on the event loop: the delimiters
are found first with ``bytes.find`` (at most ``MAX_PARTS`` of them, each followed by CRLF or
``--``), and each part's header block is at most ``MAX_PART_HEADER_BYTES``, so the parser's
byte-by-byte loops never see more than ``MAX_PARTS * MAX_PART_HEADER_BYTES`` bytes; the
part data is found and copied at C speed, whatever it holds.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError

from okap_server.proxy.errors import InvalidMultipart

MAX_PARTS = 64
MAX_PART_HEADER_BYTES = 2048
MAX_TEXT_FIELD_BYTES = 1024 * 1024
FORM_DATA = "multipart/form-data"

# RFC 9110 §5.6.2 token; §5.6.4 quoted-string, without quoted-pairs: a backslash is read as
# an escape by some parsers and as a character by browsers' (WHATWG), so it is refused.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"[^"\\\x00-\x08\x0a-\x1f\x7f]*"'
_HEAD = re.compile(rf"[ \t]*({_TOKEN}(?:/{_TOKEN})?)[ \t]*")
_PARAMETER = re.compile(rf"[ \t]*;[ \t]*({_TOKEN})[ \t]*=[ \t]*({_TOKEN}|{_QUOTED})[ \t]*")
# RFC 2046 §5.1.1 bchars, 1 to 70 of them, not ending in a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Content-Transfer-Encoding values that leave the bytes as they are (RFC 2045 §6.1).
_IDENTITY_ENCODINGS = frozenset({"7bit", "8bit", "binary"})
_TEXT_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii"})


def _integer(value: str) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 9):
        raise ValueError(value)
    return int(value)


def _boolean(value: str) -> bool:
    if value not in ("true", "false"):
        raise ValueError(value)
    return value == "true"


# The fields the vault reads itself (the model it checks, the counts and modes it bills by),
# as the upstream reads them. They must be text parts (no filename) of plain UTF-8 text.
READ_FIELDS: Mapping[str, Callable[[str], Any]] = MappingProxyType(
    {"model": str, "n": _integer, "partial_images": _integer, "stream": _boolean}
)


@dataclass(frozen=True)
class Form:
    """A form as the vault read it: its text fields (``name[]`` fields as lists, the
    fields of ``READ_FIELDS`` typed), and the body and ``Content-Type`` to forward."""

    fields: dict[str, Any]
    body: bytes
    content_type: str


@dataclass
class _Part:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    data: list[bytes | memoryview] = field(default_factory=list)
    name: str = ""
    filename: str | None = None
    content_type: str | None = None


def is_form_data(content_type: str) -> bool:
    return content_type.partition(";")[0].strip().lower() == FORM_DATA


def parameters(value: str, what: str) -> tuple[str, list[tuple[str, str]]]:
    """A header value's type and its parameters in order (names lower-cased, quotes
    removed); 400 if it does not parse."""
    head = _HEAD.match(value)
    if head is None:
        raise InvalidMultipart(f"The {what} header is malformed.")
    found: list[tuple[str, str]] = []
    position = head.end()
    while position < len(value):
        parameter = _PARAMETER.match(value, position)
        if parameter is None:
            raise InvalidMultipart(
                f"The {what} header is malformed (a parameter value with a backslash, a "
                "control character or a stray character)."
            )
        raw = parameter.group(2)
        found.append((parameter.group(1).lower(), raw[1:-1] if raw.startswith('"') else raw))
        position = parameter.end()
    return head.group(1).lower(), found


def boundary_of(content_type: str) -> bytes:
    _, found = parameters(content_type, "Content-Type")
    values = [value for name, value in found if name == "boundary"]
    if len(values) != 1:
        raise InvalidMultipart(
            "A multipart/form-data body needs exactly one boundary parameter in its "
            "Content-Type (RFC 2046 §5.1.1)."
        )
    if _BOUNDARY.fullmatch(values[0]) is None:
        raise InvalidMultipart(
            "The multipart boundary must be 1 to 70 of the characters RFC 2046 §5.1.1 allows."
        )
    return values[0].encode("ascii")


def count_parts(body: bytes, boundary: bytes) -> int:
    """The number of parts, from the delimiters alone (RFC 2046 §5.1.1), before the parser
    sees the body: every delimiter must be followed by CRLF or, the last, by ``--`` (no
    transport padding, and no boundary inside a part, where readers disagree), and every
    part must have its header block, of at most ``MAX_PART_HEADER_BYTES``."""
    opening = b"--" + boundary
    if not body.startswith(opening):
        raise InvalidMultipart("The body does not begin with its boundary (no preamble).")
    delimiter = b"\r\n" + opening
    position = len(opening)
    parts = 0
    while True:
        after = body[position : position + 2]
        if after == b"--":
            return parts
        if after != b"\r\n":
            raise InvalidMultipart(
                "The boundary appears inside a part, or a delimiter is not followed by "
                "CRLF: the form could be read two ways."
            )
        parts += 1
        if parts > MAX_PARTS:
            raise InvalidMultipart(f"The form has more than {MAX_PARTS} parts.")
        following = body.find(delimiter, position)
        if following == -1:
            raise InvalidMultipart("The form is not closed by its final boundary.")
        limit = min(following, position + 2 + MAX_PART_HEADER_BYTES + 2)
        if body.find(b"\r\n\r\n", position, limit) == -1:
            raise InvalidMultipart(
                f"A part has no header block, or headers over {MAX_PART_HEADER_BYTES} bytes."
            )
        position = following + len(delimiter)


def _parse(body: bytes, boundary: bytes) -> list[_Part]:
    parts: list[_Part] = []
    header_name: list[bytes] = []
    header_value: list[bytes] = []
    view = memoryview(body)
    ended: list[bool] = []

    def on_part_begin() -> None:
        parts.append(_Part())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.append(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.append(data[start:end])

    def on_header_end() -> None:
        parts[-1].headers.append((b"".join(header_name), b"".join(header_value)))
        header_name.clear()
        header_value.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].data.append(view[start:end] if data is body else data[start:end])

    def on_end() -> None:
        ended.append(True)

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_end": on_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except FormParserError:
        raise InvalidMultipart("The multipart/form-data body is malformed.") from None
    if not ended:
        raise InvalidMultipart("The form is not closed by its final boundary.")
    return parts


def _read_headers(part: _Part) -> None:
    """Name, filename and type of one part, from its headers (RFC 7578 §4.2-4.8)."""
    seen: dict[str, bytes] = {}
    for raw_name, raw_value in part.headers:
        name = raw_name.decode("latin-1").lower()
        if name in seen and name in (
            "content-disposition",
            "content-type",
            "content-transfer-encoding",
        ):
            raise InvalidMultipart(f"A part has two {name} headers.")
        seen[name] = raw_value
    encoding = seen.get("content-transfer-encoding")
    if encoding is not None and encoding.strip().lower().decode("latin-1") not in (
        _IDENTITY_ENCODINGS
    ):
        raise InvalidMultipart(
            "A part has a Content-Transfer-Encoding (RFC 7578 §4.7): the vault reads the "
            "bytes as sent and would not read what the upstream decodes."
        )
    disposition = seen.get("content-disposition")
    if disposition is None:
        raise InvalidMultipart("A part has no Content-Disposition header (RFC 7578 §4.2).")
    try:
        text = disposition.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidMultipart("A part's Content-Disposition is not UTF-8.") from None
    kind, found = parameters(text, "Content-Disposition")
    if kind != "form-data":
        raise InvalidMultipart("A part's Content-Disposition is not form-data (RFC 7578 §4.2).")
    values: dict[str, str] = {}
    for key, value in found:
        if key.endswith("*") or "*" in key:
            raise InvalidMultipart(
                f"A part names itself with '{key}': RFC 7578 §4.2 forbids the extended "
                "(RFC 5987) form in multipart/form-data."
            )
        if key in ("name", "filename"):
            if key in values:
                raise InvalidMultipart(f"A part's Content-Disposition has two {key} values.")
            if _CONTROL.search(value):
                raise InvalidMultipart(f"A part's {key} has a control character.")
            values[key] = value
    if not values.get("name"):
        raise InvalidMultipart("A part has no name (RFC 7578 §4.2).")
    part.name, part.filename = values["name"], values.get("filename")
    content_type = seen.get("content-type")
    if content_type is not None:
        ctype = content_type.decode("latin-1").strip()
        media, options = parameters(ctype, "Content-Type of a part")
        if media.startswith("multipart/"):
            raise InvalidMultipart("A part is itself multipart (RFC 7578 §4.3 removed that).")
        charset = [v.lower() for k, v in options if k == "charset"]
        if part.filename is None and any(c not in _TEXT_CHARSETS for c in charset):
            raise InvalidMultipart(
                f"The field '{part.name[:100]}' declares a charset other than UTF-8."
            )
        part.content_type = ctype


def _value(part: _Part) -> str:
    size = sum(len(chunk) for chunk in part.data)
    if size > MAX_TEXT_FIELD_BYTES:
        raise InvalidMultipart(
            f"The field '{part.name[:100]}' is over {MAX_TEXT_FIELD_BYTES} bytes; send "
            "content as a file part (with a filename)."
        )
    try:
        return b"".join(part.data).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidMultipart(
            f"The field '{part.name[:100]}' is not UTF-8 text (RFC 7578 §5.1)."
        ) from None


def _fields(parts: list[_Part]) -> dict[str, Any]:
    """The text fields as the upstream reads them. A name given twice is refused unless
    it is an array (``name[]``): which of the two an upstream takes is its own choice."""
    fields: dict[str, Any] = {}
    names: set[str] = set()
    for part in parts:
        name = part.name
        array = name.endswith("[]")
        if name in names and not array:
            raise InvalidMultipart(f"The field '{name[:100]}' is given twice.")
        names.add(name)
        if name == "_charset_":
            raise InvalidMultipart("A '_charset_' field (RFC 7578 §4.6) is not accepted.")
        reader = READ_FIELDS.get(name)
        if part.filename is not None:
            if reader is not None:
                raise InvalidMultipart(f"The field '{name}' must be text, not a file.")
            continue
        if reader is not None and part.content_type is not None:
            media, _ = parameters(part.content_type, "Content-Type of a part")
            if media != "text/plain":
                raise InvalidMultipart(f"The field '{name}' must be plain text.")
        value = _value(part)
        if array:
            fields.setdefault(name, []).append(value)
        elif reader is not None:
            try:
                fields[name] = reader(value)
            except ValueError:
                raise InvalidMultipart(f"The field '{name}' has an invalid value.") from None
        else:
            fields[name] = value
    return fields


def _encode(parts: list[_Part], body: bytes) -> tuple[bytes, str]:
    """The form again, under a boundary found nowhere in the body (RFC 7578 §4.1)."""
    boundary = ("okap-" + secrets.token_hex(16)).encode("ascii")
    while boundary in body:  # pragma: no cover (1 in 2**128)
        boundary = ("okap-" + secrets.token_hex(16)).encode("ascii")
    delimiter = b"--" + boundary + b"\r\n"
    out: list[bytes | memoryview] = []
    for part in parts:
        head = b'Content-Disposition: form-data; name="' + part.name.encode() + b'"'
        if part.filename is not None:
            head += b'; filename="' + part.filename.encode() + b'"'
        if part.content_type is not None:
            head += b"\r\nContent-Type: " + part.content_type.encode("latin-1")
        out.append(delimiter + head + b"\r\n\r\n")
        out.extend(part.data)
        out.append(b"\r\n")
    out.append(b"--" + boundary + b"--\r\n")
    return b"".join(out), f"{FORM_DATA}; boundary={boundary.decode('ascii')}"


def read_form(body: bytes, content_type: str) -> Form:
    """The form of a ``multipart/form-data`` body, or 400 ``invalid_multipart``."""
    boundary = boundary_of(content_type)
    expected = count_parts(body, boundary)
    parts = _parse(body, boundary)
    if len(parts) != expected:  # pragma: no cover (the delimiters were checked above)
        raise InvalidMultipart("The multipart/form-data body is malformed.")
    for part in parts:
        _read_headers(part)
    fields = _fields(parts)
    encoded, forwarded_type = _encode(parts, body)
    return Form(fields, encoded, forwarded_type)
