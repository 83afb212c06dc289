"""Member names as protobuf's JSON reader takes them, derived in one place.

Google's APIs read JSON with protobuf's reader, which accepts a field under its
lowerCamelCase JSON name *and* its original snake_case name (``fileUri`` and ``file_uri``,
``cachedContent`` and ``cached_content``). Every name the vault looks for in a Gemini body
(a reference to a stored object, a member it reads for cost) must therefore be matched
under both spellings: listing the pairs by hand forgets one sooner or later, so every
table derives the second spelling from the first here.
"""

from __future__ import annotations

import re

_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(name: str) -> str:
    """``fileUri`` → ``file_uri`` (protobuf's original field name for a JSON name)."""
    return _HUMP.sub(r"_\1", name).lower()


def protobuf_spellings(name: str) -> tuple[str, ...]:
    """Both spellings of a lowerCamelCase field, JSON name first (one if they are equal)."""
    return tuple(dict.fromkeys((name, snake(name))))


def protobuf_names(*names: str) -> frozenset[str]:
    """Every spelling of each lowerCamelCase field in ``names``."""
    return frozenset(s for name in names for s in protobuf_spellings(name))
