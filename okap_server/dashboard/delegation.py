"""The app detail page's delegation tree: the tokens an app handed on (RFC 8693 token
exchange), nested as they were delegated, each with its spend and a Revoke of its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from okap_server.authorization.delegation import ancestors_of
from okap_server.authorization.models import Grant
from okap_server.dashboard import formatting as fmt
from okap_server.proxy.usage import delegation_report


@dataclass
class DelegateNode:
    grant_id: str
    client_name: str
    active: bool
    spend: str
    children: list[DelegateNode] = field(default_factory=list)


@dataclass
class DelegationView:
    parents: list[tuple[str, str]]  # (id, name) of the ancestors, root first
    tree: list[DelegateNode]
    allowed: bool


def delegation_view(session: Session, grant: Grant) -> DelegationView:
    """The grant's ancestors (for its crumbs) and its delegated tokens as a tree."""
    report: dict[str, Any] = delegation_report(session, grant)
    nodes: dict[str, DelegateNode] = {}
    roots: list[DelegateNode] = []
    for item in report["delegated"]:  # parents come before their children
        node = DelegateNode(
            grant_id=item["grant_id"],
            client_name=item["client_name"],
            active=item["active"],
            spend=fmt.usd_exact(round((item["spend_total"] or 0) * 1_000_000)),
        )
        nodes[node.grant_id] = node
        parent = nodes.get(item["parent_grant_id"])
        (parent.children if parent is not None else roots).append(node)
    parents = [(a.id, a.client_name) for a in ancestors_of(session, grant)]
    return DelegationView(parents=parents, tree=roots, allowed=grant.delegation_allowed)
