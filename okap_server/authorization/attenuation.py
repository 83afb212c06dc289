"""Attenuation: a delegated grant's details must be a subset of its parent's (RFC 8693).

Token exchange may only narrow. ``attenuate`` takes the child's requested
``authorization_details`` (as decoded JSON) and the parent's stored entries, fills what the
child left out from the parent (a limit, the model list, the capabilities, the expiry), and
refuses anything wider with ``InvalidAuthorizationDetails`` naming the field:

======================  =============================================================
field                   the child's value must be
======================  =============================================================
``provider``            a provider the parent has an entry for
``models``              within the parent's allow-list: each name or glob matched, or a
                        narrower glob (``gpt-4o*`` under ``gpt-*``); none if the parent
                        names none
``capabilities``        a subset of the parent's
``limits.<name>``       no higher than the parent's; a limit the parent has cannot be
                        dropped (an unnamed one is inherited)
``expires``             no later than the parent's entry
======================  =============================================================

Pure functions: no session, no clock but the ``now`` passed in.
"""

from __future__ import annotations

import fnmatch
from datetime import datetime
from typing import Any

from okap_server.authorization.capabilities import COUNT_LIMITS, SPEND_LIMITS, enforced
from okap_server.authorization.details import parse_details, parse_time
from okap_server.authorization.errors import InvalidAuthorizationDetails
from okap_server.clock import isoformat_z
from okap_server.proxy.providers.catalog import ProviderCatalog
from okap_server.settings import DefaultLimits, Settings

LIMIT_NAMES = SPEND_LIMITS + COUNT_LIMITS
_WILDCARDS = frozenset("*?[")


def _wider(field: str, reason: str) -> InvalidAuthorizationDetails:
    return InvalidAuthorizationDetails(f"{field}: {reason}")


def effective_limits(raw: Any, defaults: DefaultLimits) -> dict[str, Any]:
    """A stored entry's limits as the proxy enforces them (``Limits.from_details``): an
    entry stored with no limits object at all has the defaults."""
    if not isinstance(raw, dict) or not raw:
        raw = defaults.model_dump()
    return {name: raw.get(name) for name in LIMIT_NAMES}


def model_within(child: str, parents: list[str]) -> bool:
    """Whether every model ``child`` allows is allowed by one of ``parents`` (globs, as the
    proxy matches them: case-sensitive). A plain name must match a pattern; a glob must be
    one of the parent's, or a prefix glob under a parent's prefix glob (``gpt-4o*`` under
    ``gpt-*``). Anything else could allow a name the parent does not, so it is refused."""
    if not parents:
        return True
    if not _WILDCARDS.intersection(child):
        return any(fnmatch.fnmatchcase(child, p) for p in parents)
    for parent in parents:
        if child == parent or parent == "*":
            return True
        stem, child_stem = parent[:-1], child[:-1]
        if (
            parent.endswith("*")
            and child.endswith("*")
            and not _WILDCARDS.intersection(stem)
            and not _WILDCARDS.intersection(child_stem)
            and child_stem.startswith(stem)
        ):
            return True
    return False


def _inherit(item: Any, parent: dict[str, Any], defaults: DefaultLimits, until: str) -> Any:
    """The child's entry with what it left out taken from its parent's entry (``until``:
    the parent grant's expiry, for an entry stored without its own)."""
    if not isinstance(item, dict):
        return item
    filled = dict(item)
    for name in ("models", "capabilities", "reason"):
        if name not in filled:
            filled[name] = parent.get(name)
    filled.setdefault("expires", parent.get("expires") or until)
    limits = filled.get("limits", {})
    if isinstance(limits, dict):
        inherited = effective_limits(parent.get("limits"), defaults)
        filled["limits"] = {**inherited, **limits}
    return filled


def attenuate(
    raw: Any,
    parent_details: list[dict[str, Any]],
    parent_expires_at: datetime,
    catalog: ProviderCatalog,
    settings: Settings,
    now: datetime,
) -> list[dict[str, Any]]:
    """The child's entries (normalised, each with its parent's ``key_id``), or
    ``InvalidAuthorizationDetails`` naming the first field that is wider than the parent."""
    parents = {str(e.get("provider")): e for e in parent_details}
    if isinstance(raw, list):
        filled = []
        for index, item in enumerate(raw):
            named = item.get("provider") if isinstance(item, dict) else None
            canonical = catalog.canonical(named) if isinstance(named, str) else None
            parent = parents.get(canonical or "")
            if isinstance(named, str) and canonical is not None and parent is None:
                raise _wider(
                    f"authorization_details[{index}].provider",
                    f"{named[:40]!r} is not a provider of the delegating grant",
                )
            until = isoformat_z(parent_expires_at)
            filled.append(
                _inherit(item, parent, settings.default_limits, until) if parent else item
            )
        raw = filled
    entries = parse_details(raw, catalog, settings, now=now)
    return [
        _check_entry(
            f"authorization_details[{i}]",
            entry,
            parents[entry["provider"]],
            parent_expires_at,
            settings,
        )
        for i, entry in enumerate(entries)
    ]


def _check_entry(
    where: str,
    child: dict[str, Any],
    parent: dict[str, Any],
    parent_expires_at: datetime,
    settings: Settings,
) -> dict[str, Any]:
    parent_models = [str(m) for m in parent.get("models") or []]
    if parent_models and not child["models"]:
        raise _wider(f"{where}.models", "the delegating grant allows only some models")
    for i, model in enumerate(child["models"]):
        if not model_within(model, parent_models):
            raise _wider(f"{where}.models[{i}]", f"{model[:60]!r} is not allowed to the parent")
    # As endpoints: a word may imply others (``vision`` is chat), so ``chat`` is within it.
    parent_caps = enforced(str(c) for c in parent.get("capabilities") or ["chat"])
    for i, cap in enumerate(child["capabilities"]):
        if not enforced([cap]) <= parent_caps:
            raise _wider(f"{where}.capabilities[{i}]", f"{cap!r} is not granted to the parent")
    ceiling = effective_limits(parent.get("limits"), settings.default_limits)
    for name in LIMIT_NAMES:
        mine, theirs = child["limits"].get(name), ceiling.get(name)
        if theirs is None:
            continue
        if mine is None:
            raise _wider(
                f"{where}.limits.{name}", f"the parent's limit of {theirs} cannot be dropped"
            )
        if mine > theirs:
            raise _wider(f"{where}.limits.{name}", f"{mine} is above the parent's {theirs}")
    until = parse_time(str(parent.get("expires") or "")) or parent_expires_at
    until = min(until, parent_expires_at)
    child_expires = parse_time(child["expires"])
    if child_expires is None or child_expires > until:
        raise _wider(f"{where}.expires", f"later than the parent's {isoformat_z(until)}")
    if "key_id" in parent:
        child["key_id"] = parent["key_id"]
    return child
