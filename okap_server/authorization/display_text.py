"""Text an app says about itself, checked once for every front door before a person sees it.

The consent page shows the app's name, id, web address and callback as the app asserted
them (RFC 9700 §4.15: the page says "unverified"). An app may pick any *visible* name; it may
not hide characters in it. Refused, in every front door alike (OAuth, PAR, device, OKAP
binding, reference endpoint), with ``invalid_request`` naming the field and the character:

- Unicode categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs other than U+0020 (everything
  ``str.isprintable`` rejects): controls, bidi overrides and isolates, zero-width
  characters, unassigned code points, no-break and other wide spaces;
- Default_Ignorable_Code_Point (Unicode DerivedCoreProperties.txt) that ``isprintable``
  lets through: the Hangul fillers (U+115F, U+1160, U+3164, U+FFA0), the combining grapheme
  joiner, Khmer inherent vowels, Mongolian free variation selectors, variation selectors,
  tag characters;
- characters that are assigned and printable but render as blank: U+2800 BRAILLE PATTERN
  BLANK, U+1D159 MUSICAL SYMBOL NULL NOTEHEAD, U+16FE4 KHITAN SMALL SCRIPT FILLER.

Nothing is stripped silently: what the app sent is what the person sees, or it is refused.
"""

from __future__ import annotations

import unicodedata

from okap_server.authorization.errors import InvalidRequest

# (first, last) code points, inclusive: Default_Ignorable_Code_Point (Unicode 15.1) and the
# blank-rendering characters above. Ranges of Cf/Cn inside are also caught by category.
HIDDEN_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x16FE4, 0x16FE4),
    (0x1BCA0, 0x1BCA3),
    (0x1D159, 0x1D159),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


def is_hidden(ch: str) -> bool:
    """Would this character be invisible, blank or a control on the consent page?"""
    if not ch.isprintable():
        return True
    point = ord(ch)
    if point < 0xAD:
        return False
    return any(first <= point <= last for first, last in HIDDEN_RANGES)


def hidden_character(text: str, allowed: str = "") -> str | None:
    """The first hidden character of ``text`` (those in ``allowed`` excepted), or None."""
    for ch in text:
        if ch not in allowed and is_hidden(ch):
            return ch
    return None


def describe(ch: str) -> str:
    """``U+3164 HANGUL FILLER``: how an error names a character it cannot show."""
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')}".rstrip()


def hidden_problem(text: str, allowed: str = "") -> str | None:
    """The error text for a value with a hidden character, or None when it has none."""
    found = hidden_character(text, allowed)
    if found is None:
        return None
    return f"contains invisible or control characters ({describe(found)})"


def check_display_text(where: str, value: object, limit: int) -> str | None:
    """The one check of a client-supplied display string: None when absent or blank,
    else the stripped text. Raises ``InvalidRequest`` naming ``where``."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidRequest(f"{where}: must be a string of at most {limit} characters")
    problem = hidden_problem(value)
    if problem:
        raise InvalidRequest(f"{where}: {problem}")
    return value.strip() or None


def check_display_url(where: str, value: object, limit: int = 512) -> str | None:
    """A client-supplied web address to show: visible text, and an http(s) URL."""
    url = check_display_text(where, value, limit)
    if url is not None and not url.startswith(("https://", "http://")):
        raise InvalidRequest(f"{where}: must be an http(s) URL")
    return url
