"""The delegation tree of grants (RFC 8693 token exchange): ancestors, descendants, the
chain a token shows, and revocation that reaches every descendant.

A child grant stores its ancestors root first (``Grant.ancestry``), so every question
about its chain is one query by primary key, and a grant's descendants are the grants of
its root whose ancestry names it. A grant's ancestry is written once, when it is issued,
from its parent's, which already existed: no grant can be its own ancestor, so the tree
has no cycle by construction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from okap_server.authorization.errors import InvalidRequest
from okap_server.authorization.models import Grant
from okap_server.clock import utcnow

DELEGATION_CHOICES = {"allowed": True, "forbidden": False}


def delegation_asked(value: object) -> bool:
    """An app's ``delegation`` request parameter: ``allowed`` (the default) or
    ``forbidden``, when the app itself wants a token no one can delegate. The person
    decides on the consent page; an app's "forbidden" cannot be widened there."""
    if value is None or value == "":
        return True
    if not isinstance(value, str) or value not in DELEGATION_CHOICES:
        raise InvalidRequest("delegation: must be allowed or forbidden")
    return DELEGATION_CHOICES[value]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def ancestors_of(session: Session, grant: Grant) -> list[Grant]:
    """The grant's ancestors, root first (none for a grant a person approved)."""
    chain = grant.ancestry or []
    if not chain:
        return []
    found = {g.id: g for g in session.exec(select(Grant).where(col(Grant.id).in_(chain)))}
    return [found[i] for i in chain if i in found]


def chain_is_live(session: Session, grant: Grant, now: datetime | None = None) -> bool:
    """Whether every ancestor is still there, unrevoked and unexpired: a child is only
    as alive as the grants it was delegated from."""
    if not grant.ancestry:
        return True
    now = now or utcnow()
    ancestors = ancestors_of(session, grant)
    return len(ancestors) == len(grant.ancestry) and all(
        a.revoked_at is None and _aware(a.expires_at) > now for a in ancestors
    )


def root_of(grant: Grant) -> str:
    return grant.ancestry[0] if grant.ancestry else grant.id


def descendants_of(session: Session, grant: Grant) -> list[Grant]:
    """Every grant delegated from ``grant``, at any depth, parents before children."""
    tree = session.exec(
        select(Grant).where(
            col(Grant.account_id) == grant.account_id,
            col(Grant.ancestry).is_not(None),
            col(Grant.id) != grant.id,
        )
    ).all()
    found = [g for g in tree if grant.id in (g.ancestry or [])]
    return sorted(found, key=lambda g: len(g.ancestry or []))


def children_tree(session: Session, grant: Grant) -> list[tuple[int, Grant]]:
    """The descendants of ``grant`` in depth-first order, each with its depth below it."""
    below = descendants_of(session, grant)
    by_parent: dict[str | None, list[Grant]] = {}
    for child in below:
        by_parent.setdefault(child.parent_grant_id, []).append(child)
    ordered: list[tuple[int, Grant]] = []

    def walk(parent_id: str, depth: int) -> None:
        for child in sorted(by_parent.get(parent_id, []), key=lambda g: g.created_at):
            ordered.append((depth, child))
            walk(child.id, depth + 1)

    walk(grant.id, 1)
    return ordered


def delegation_view(grant: Grant) -> dict[str, Any]:
    """What introspection and ``/okap/usage`` show of the chain: the parent, the ancestors
    root first, the depth, whether it may be delegated further, and ``act`` (RFC 8693 §4.1)."""
    view: dict[str, Any] = {
        "parent_grant_id": grant.parent_grant_id,
        "chain": list(grant.ancestry or []),
        "depth": grant.depth,
        "allowed": grant.delegation_allowed,
    }
    if grant.act:
        view["act"] = grant.act
    return view
