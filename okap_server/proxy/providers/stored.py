"""Stored objects as the adapters describe them: the collections a provider keeps for the
key's whole organisation, the answer fields naming what a grant created, and the body
members naming what a request reads (see :mod:`okap_server.proxy.ownership`)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Collection:
    """Objects the provider stores for the key's whole organisation, under ``path``:
    ``GET path`` lists them, ``POST path`` creates one, ``path/{id}...`` reads, changes or
    deletes one. A key is shared by every app its owner grants it to, so a grant may not
    list a collection, and may use by id only the objects it owns: those it created
    (``owns``: the fields of the answers that name them, dotted for nested ones).

    ``stored``: None if every creation stores its object; else whether one does when its
    body says nothing (``"store": false`` or ``true`` decides). ``actions``: sub-paths of
    ``path`` that are not ids. ``prefix``: how the provider names an object of the
    collection in answers and bodies (Gemini: ``files/{id}``)."""

    path: tuple[str, ...]
    owns: tuple[str, ...] = ("id",)
    stored: bool | None = None
    actions: frozenset[str] = frozenset()
    prefix: str = ""
    owns_always: tuple[str, ...] = ()

    @functools.cached_property
    def joined(self) -> str:
        return "/".join(self.path)

    def match(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """``Route`` fields for ``path`` if it is under this collection, else none."""
        joined = self.joined
        if path == joined:
            return self.route_fields(method, [], body)
        if path.startswith(joined) and path[len(joined) : len(joined) + 1] == "/":
            return self.route_fields(method, path[len(joined) + 1 :].split("/"), body)
        return {}

    def route_fields(
        self, method: str, tail: list[str], body: dict[str, Any] | None
    ) -> dict[str, Any]:
        """``Route`` fields for a request on ``path + tail``."""
        if not tail:
            if method == "GET":
                return {"listing": True}
            if method != "POST":
                return {}
            if self.stored is not None:
                asked = body.get("store") if body else None
                if (asked if isinstance(asked, bool) else self.stored) is False:
                    return {"owns": self.owns_always} if self.owns_always else {}
            return {"owns": self.owns + self.owns_always}
        if tail[0] in self.actions:
            return {}
        name = tail[0].partition(":")[0]  # Gemini: ``batches/{id}:cancel``
        return {"object_id": self.prefix + name, "owns": self.owns}


def owned_ids(answer: dict[str, Any], fields: tuple[str, ...]) -> list[str]:
    """The ids an answer names in ``fields`` (dotted paths; ``*`` is every item of a list:
    ``output.*.id``), for the grant to own."""
    found: list[str] = []
    for path in fields:
        values: list[Any] = [answer]
        for key in path.split("."):
            if key == "*":
                values = [v for value in values if isinstance(value, list) for v in value]
            else:
                values = [value.get(key) for value in values if isinstance(value, dict)]
        found.extend(v for v in values if isinstance(v, str) and v)
    return found


def references_in(
    body: Any, keys: frozenset[str], types: Mapping[str, str] | None = None
) -> list[Any]:
    """Every value, anywhere in a JSON body, of a key in ``keys``, and the member
    ``types[t]`` of every object whose ``type`` is ``t`` (no recursion: a body may nest as
    deep as its parser allowed)."""
    found: list[Any] = []
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            kind = item.get("type") if types else None
            if isinstance(kind, str) and types and kind in types:
                found.append(item.get(types[kind]))
            for key, value in item.items():
                if key in keys:
                    found.append(value)
                if isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, dict | list))
    return found
