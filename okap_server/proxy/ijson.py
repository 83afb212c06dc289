"""Reading a request body as I-JSON (RFC 7493), so that the vault and the provider read one
thing, and noting on the way the inputs whose size the body does not show.

The vault checks a body (model, output caps, fan-out, references) and forwards the bytes it
checked, or its own re-serialisation when it changed them. If two JSON readers could take
the same bytes two ways, the provider could act on what the vault never checked (a second
``max_tokens``). So the proxy reads a body only if every conforming reader reads it alike:

- UTF-8 only (RFC 8259 §8.1, RFC 7493 §2.1): no byte order mark, no UTF-16/32, no encoded
  surrogates (Python's ``json`` takes all three from bytes; Go and Node do not), and no
  ``charset`` parameter naming another encoding (some servers honour it).
- No lone surrogate escape (RFC 7493 §2.1): Go reads ``"\\ud800"`` as U+FFFD, Node keeps a
  lone UTF-16 unit, Python a lone code point.
- Unique member names (RFC 7493 §2.3): Python and Node keep the last duplicate, others the
  first; Go's struct decoder takes the last name that matches a field, ignoring case.
- No ``NaN``/``Infinity`` literals (not JSON, RFC 8259 §6), no number beyond a double's
  range (``1e400``: Python reads infinity, Go fails, Node reads ``Infinity``).
- Bounded nesting (Python's reader would raise ``RecursionError``).

Names that a lenient reader takes for a name the vault reads (``MAX_TOKENS`` in Go,
``max_output_tokens`` for ``maxOutputTokens`` in protobuf's JSON) are the adapters' concern:
see :func:`okap_server.proxy.providers.base.members`.

While reading, every object is looked at once (the decoder's object hook, innermost first)
for the parts that bring input the body's bytes do not bound: an image is billed by its
pixels, not its bytes (a 3 KB PNG of 2048x768 pixels is tens of thousands of tokens); a
file id, a PDF, audio or video, an item reference stand for input held elsewhere or far
larger than their bytes. They are counted wherever they appear (a message, a tool result,
a function output), so no position the provider reads them from is missed; the count is an
over-estimate at worst, which only makes a hold larger.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from okap_server.proxy.spelling import protobuf_names

# ``{"type": ...}`` of a content part whose input tokens are bounded by the image bound.
IMAGE_PARTS: frozenset[str] = frozenset(
    {"image_url", "input_image", "image"}  # OpenAI chat, OpenAI Responses, Anthropic
)
# ``{"type": ...}`` of a part whose input the vault cannot size: a file (PDF pages are
# billed as text and images), audio, a stored item, a file in a code container.
OPAQUE_PARTS: frozenset[str] = frozenset(
    {"input_file", "input_audio", "item_reference", "container_upload"}
)
# Anthropic document blocks are opaque unless their source is inline text or content.
_INLINE_SOURCES = frozenset({"text", "content"})
# Gemini parts name their data by key: inline bytes (images, audio, video, PDF) or a file.
OPAQUE_KEYS: frozenset[str] = protobuf_names("inlineData", "fileData")
# Any other typed part is sized by its bytes only if no member of it carries media: one
# whose name ends in any of these words (``document_url``, ``input_audio``, ``fileUri``,
# ``file_data``, ``video``...), or is a file id, makes it opaque, so a provider's part type
# the vault has never heard of is held at the reference bound, not at its bytes.
_MEDIA_WORDS: frozenset[str] = frozenset(
    {"url", "uri", "file", "data", "audio", "video", "document", "image", "pdf", "blob"}
)
# Typed parts known to be billed by their bytes although a member name has a media word:
# Anthropic's redacted thinking (``data``: the encrypted thinking, sent back as it came).
_BYTE_SIZED_PARTS: frozenset[str] = frozenset({"redacted_thinking"})
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")

_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)


class NotIJson(ValueError):
    """The body is not I-JSON; the message says what, for the app's developer."""


@dataclass
class BodyFacts:
    """What reading the body found: media parts, inputs held elsewhere, named models."""

    images: int = 0
    opaque: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)


class JsonBody(dict[str, Any]):
    """A request body's top-level object, with the facts found while reading it."""

    facts: BodyFacts


# An object with any of these members is looked at after reading (see ``_survey``).
_NOTED: frozenset[str] = frozenset({"type", "model"}) | OPAQUE_KEYS


def _duplicate(pairs: list[tuple[str, Any]]) -> NotIJson:
    name = next(n for n, c in Counter(n for n, _ in pairs).items() if c > 1)
    return NotIJson(
        f"The request body names '{name[:80]}' twice in one object; JSON readers differ "
        "on which one counts, so the vault refuses it (RFC 7493 §2.3)."
    )


def _hook(noted: list[dict[str, Any]]) -> Any:
    """The decoder's object hook: one call per object, innermost first. It must stay cheap
    (it runs for every object of every body): a duplicate check and a set test in C."""
    append = noted.append

    def each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            raise _duplicate(pairs)
        if not _NOTED.isdisjoint(obj):
            append(obj)
        return obj

    return each


@functools.lru_cache(maxsize=4096)
def carries_media(name: str) -> bool:
    """Whether a member name names media by its last word (``document_url``, ``fileUri``,
    ``input_audio``) or is a file id; not ``document_index`` or ``metadata``. Asked for
    every member of every typed part (each ``{"type": "text", "text": ...}`` of a
    conversation), so each name's answer is kept: the regex costs about 1.5 µs, a hit in
    the cache a tenth of that. Apps choose the names; the cache is bounded."""
    words = [w.lower() for w in _WORD.findall(name)]
    return bool(words) and (words[-1] in _MEDIA_WORDS or words[-2:] == ["file", "id"])


def _survey(noted: list[dict[str, Any]]) -> BodyFacts:
    facts = BodyFacts()
    # A part's ``source`` (Anthropic: base64, url, file) is sized with the part around it.
    sources = {id(s) for obj in noted if isinstance(s := obj.get("source"), dict)}
    for obj in noted:
        kind = obj.get("type")
        if kind.__class__ is str:
            if kind in IMAGE_PARTS:
                facts.images += 1
            elif kind in OPAQUE_PARTS or (kind == "file" and "file" in obj):
                facts.opaque.append(kind)
            elif kind == "document":
                source = obj.get("source")
                if not (isinstance(source, dict) and source.get("type") in _INLINE_SOURCES):
                    facts.opaque.append(kind)
            elif (
                kind not in _BYTE_SIZED_PARTS
                and id(obj) not in sources
                and any(carries_media(name) for name in obj if name != "type")
            ):
                facts.opaque.append(kind[:40])
        if not OPAQUE_KEYS.isdisjoint(obj):
            facts.opaque.extend(k for k in OPAQUE_KEYS if isinstance(obj.get(k), dict))
        model = obj.get("model")
        if model.__class__ is str:
            facts.models.append(model)
    return facts


def _no_constant(name: str) -> Any:
    raise NotIJson(f"The request body holds {name}, which is not JSON (RFC 8259 §6).")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotIJson(f"The number {text[:40]} in the request body is too large (RFC 7493 §2.2).")
    return value


def check_charset(content_type: str) -> None:
    """JSON is UTF-8 (RFC 8259 §8.1); a ``charset`` naming another encoding is refused."""
    found = _CHARSET.search(content_type)
    if found and found.group(1).lower() not in ("utf-8", "utf8"):
        raise NotIJson("A JSON request body must be UTF-8 (RFC 8259 §8.1).")


def read_object(data: bytes) -> JsonBody | None:
    """The body's top-level object with its facts; None if the top level is not an object.

    Raises :class:`NotIJson` for anything the module docstring lists."""
    try:
        text = data.decode("utf-8")  # strict: invalid bytes and encoded surrogates fail
    except UnicodeDecodeError:
        raise NotIJson("The request body is not UTF-8 (RFC 8259 §8.1).") from None
    noted: list[dict[str, Any]] = []
    decoder = json.JSONDecoder(
        object_pairs_hook=_hook(noted), parse_constant=_no_constant, parse_float=_finite
    )
    try:
        value = decoder.decode(text)
    except RecursionError:
        raise NotIJson("The request body is nested too deeply.") from None
    except NotIJson:
        raise
    except ValueError:  # JSONDecodeError, and the BOM check
        raise NotIJson("The request body is not valid JSON.") from None
    if "\\u" in text and _LONE_SURROGATE.search(text):
        try:  # the pattern also matches an escaped backslash before "u": check exactly
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise NotIJson(
                "The request body holds a lone surrogate escape, which JSON readers "
                "read differently (RFC 7493 §2.1)."
            ) from None
    if not isinstance(value, dict):
        return None
    body = JsonBody(value)
    body.facts = _survey(noted)
    return body
