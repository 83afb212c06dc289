"""The proxy's view of a grant: its entries, limits, keys and the ceilings above it.

``load_grant`` reads it in one query; ``proxy.grant_cache`` keeps it in process. A grant
of a disabled account counts as revoked: the flag is read with the grant in the same query,
so it costs no extra round trip and no per-request work.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from okap_server.accounts.models import Account
from okap_server.catalog import ProviderCatalog
from okap_server.grants.capabilities import enforced
from okap_server.grants.models import Grant
from okap_server.settings import DefaultLimits
from okap_server.vault.keys import KeyStore
from okap_server.vault.models import ProviderKey

MICROS = 1_000_000


def _usd_to_micros(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return round(value * MICROS)


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Limits:
    """One entry's limits; None means no limit of that kind. Spend in micro-dollars."""

    monthly_spend: int | None = None
    daily_spend: int | None = None
    total_spend: int | None = None
    weekly_spend: int | None = None
    # A ceiling above the grant (its account's or its key's) limits its spend too: the
    # proxy then prices, caps and bounds every request as under a spend limit.
    under_ceiling: bool = False
    requests_per_minute: int | None = None
    requests_per_day: int | None = None
    tokens_per_request: int | None = None

    @property
    def spend_limited(self) -> bool:
        return (
            self.under_ceiling
            or self.monthly_spend is not None
            or self.daily_spend is not None
            or self.weekly_spend is not None
            or self.total_spend is not None
        )

    @classmethod
    def from_details(cls, raw: Any, defaults: DefaultLimits) -> Limits:
        """A granted entry's limits: null is no limit (the person may have cleared one, or
        all). Only an entry stored with no limits object at all gets ``defaults``."""
        if not isinstance(raw, dict) or not raw:
            raw = defaults.model_dump()
        return cls(
            monthly_spend=_usd_to_micros(raw.get("monthly_spend")),
            daily_spend=_usd_to_micros(raw.get("daily_spend")),
            total_spend=_usd_to_micros(raw.get("total_spend")),
            weekly_spend=_usd_to_micros(raw.get("weekly_spend")),
            requests_per_minute=_count(raw.get("requests_per_minute")) or None,
            requests_per_day=_count(raw.get("requests_per_day")) or None,
            tokens_per_request=_count(raw.get("tokens_per_request")) or None,
        )


@dataclass(frozen=True)
class Ceilings:
    """The spend ceilings above one grant entry, micro-dollars, None for none: its
    account's (over every grant of the account) and its key's (over every grant the key
    backs). Spend is counted against ``account_id`` and ``key_id`` whether or not a
    ceiling is set, so a ceiling set later starts from what was really spent."""

    account_id: str = ""
    key_id: str | None = None
    daily: int | None = None
    weekly: int | None = None
    monthly: int | None = None
    key_monthly: int | None = None
    # A delegated grant's ancestors (RFC 8693 token exchange), root first: each one's id
    # and its limits for this entry's provider. A child's requests and spend count against
    # every ancestor's limits too, in the same admission (``accounting/holds.py``).
    ancestors: tuple[tuple[str, Limits], ...] = ()

    @property
    def nested(self) -> bool:
        """A delegated grant's entry: its holds and counts reach its ancestors' rows."""
        return bool(self.ancestors)

    @property
    def lineage(self) -> tuple[str, ...]:
        """The ancestors' ids, root first: settlement charges their counters too."""
        return tuple(grant_id for grant_id, _ in self.ancestors)

    @property
    def set(self) -> bool:
        return (
            self.daily is not None
            or self.weekly is not None
            or self.monthly is not None
            or self.key_monthly is not None
        )


NO_CEILINGS = Ceilings()


@dataclass(frozen=True)
class GrantEntry:
    """One ``ai_model_access`` entry of a grant, with the key that backs it."""

    provider: str
    models: tuple[str, ...]
    capabilities: frozenset[str]
    limits: Limits
    expires_at: datetime | None
    key: ProviderKey | None
    ceilings: Ceilings = NO_CEILINGS
    # A delegated grant's ancestors' model allow-lists (those that have one): a model must
    # be allowed by each of them too, so narrowing a parent narrows its children at once.
    ancestor_models: tuple[tuple[str, ...], ...] = ()

    def allows_model(self, model: str) -> bool:
        pattern = self._model_pattern
        if pattern is not None and pattern.match(model) is None:
            return False
        return all(p.match(model) is not None for p in self._ancestor_patterns)

    @functools.cached_property
    def _ancestor_patterns(self) -> tuple[re.Pattern[str], ...]:
        return tuple(
            re.compile("|".join(fnmatch.translate(p) for p in models))
            for models in self.ancestor_models
        )

    @functools.cached_property
    def _model_pattern(self) -> re.Pattern[str] | None:
        """The allow-list's globs as one regex, built once per cached grant, not per call."""
        if not self.models:
            return None
        return re.compile("|".join(fnmatch.translate(p) for p in self.models))


@dataclass(frozen=True)
class GrantView:
    id: str
    account_id: str
    client_name: str
    expires_at: datetime
    revoked: bool
    entries: dict[str, GrantEntry]
    # A delegated grant's ancestors, root first: its cached view is dropped when any of
    # them changes (``GrantCache.invalidate``).
    ancestry: tuple[str, ...] = ()


def _ancestor_rows(session: Session, ancestry: list[str]) -> list[Grant] | None:
    """A child's ancestors, root first, in one query; None if one is gone."""
    found = {g.id: g for g in session.exec(select(Grant).where(col(Grant.id).in_(ancestry)))}
    rows = [found.get(i) for i in ancestry]
    return None if any(r is None for r in rows) else [r for r in rows if r is not None]


def _ancestor_entries(
    ancestors: list[Grant], provider: str, catalog: ProviderCatalog
) -> list[tuple[str, Mapping[str, Any]]] | None:
    """Each ancestor's entry for ``provider``; None if one no longer has that provider."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    for ancestor in ancestors:
        raw = next(
            (e for e in ancestor.details if catalog.canonical(str(e.get("provider"))) == provider),
            None,
        )
        if raw is None:
            return None
        found.append((ancestor.id, raw))
    return found


def _earliest(*times: datetime | None) -> datetime | None:
    """An entry ends with the first of its own expiry and each ancestor entry's (a child
    cannot outlive what it was delegated from, provider by provider)."""
    known = [t for t in times if t is not None]
    return min(known) if known else None


def load_grant(
    session: Session,
    hashed: str,
    catalog: ProviderCatalog,
    defaults: DefaultLimits,
) -> GrantView | None:
    """The grant whose token hashes to ``hashed``, with each entry's key row; or None.
    A disabled account's grant is loaded as revoked."""
    found = session.exec(
        select(Grant, Account)
        .join(Account, col(Account.id) == col(Grant.account_id))
        .where(Grant.token_hash == hashed)
    ).first()
    if found is None:
        return None
    grant, account = found
    # A delegated grant: its ancestors in one more query (a grant a person approved, the
    # common case, pays none). It is revoked if any of them is, and ends with the first.
    ancestors = _ancestor_rows(session, grant.ancestry) if grant.ancestry else []
    revoked = grant.revoked_at is not None or bool(account.disabled) or ancestors is None
    expires_at = grant.expires_at
    for ancestor in ancestors or ():
        revoked = revoked or ancestor.revoked_at is not None
        expires_at = min(expires_at, ancestor.expires_at)
    entries: dict[str, GrantEntry] = {}
    for raw in grant.details:
        provider = catalog.canonical(str(raw.get("provider", "")))
        if provider is None or provider in entries:
            continue
        above_entries = _ancestor_entries(ancestors, provider, catalog) if ancestors else []
        if above_entries is None:
            continue
        above = tuple((i, Limits.from_details(e.get("limits"), defaults)) for i, e in above_entries)
        key_id = raw.get("key_id")
        key = KeyStore.get(session, grant.account_id, key_id) if isinstance(key_id, str) else None
        if key is None and not isinstance(key_id, str):
            key = KeyStore.default_for(session, grant.account_id, provider)
        models = raw.get("models") or []
        # SPEC: absent = ["chat"]; compared as endpoints, since a word may imply others
        capabilities = enforced(str(c) for c in raw.get("capabilities") or ["chat"])
        for _, above_entry in above_entries:  # never more than any ancestor has now
            capabilities &= enforced(str(c) for c in above_entry.get("capabilities") or ["chat"])
        ceilings = Ceilings(
            account_id=account.id,
            key_id=key.id if key is not None else None,
            daily=account.daily_ceiling_micros,
            weekly=account.weekly_ceiling_micros,
            monthly=account.monthly_ceiling_micros,
            key_monthly=key.monthly_ceiling_micros if key is not None else None,
            ancestors=above,
        )
        limits = Limits.from_details(raw.get("limits"), defaults)
        # A per-request cap is not a budget the admission shares along the chain: the
        # lowest of the grant's and every ancestor's applies to it as its own.
        if above:
            caps = [
                c
                for c in (limits.tokens_per_request, *(a.tokens_per_request for _, a in above))
                if c
            ]
            limits = replace(limits, tokens_per_request=min(caps, default=None))
        # Spend limited above (an ancestor's limit, or a ceiling): priced and held as if
        # it were the grant's own.
        above_spend = ceilings.set or any(a.spend_limited for _, a in above)
        entries[provider] = GrantEntry(
            provider=provider,
            models=tuple(str(m) for m in models),
            capabilities=capabilities,
            limits=replace(limits, under_ceiling=True) if above_spend else limits,
            expires_at=_earliest(
                parse_time(raw.get("expires")),
                *(parse_time(e.get("expires")) for _, e in above_entries),
            ),
            key=key,
            ceilings=ceilings,
            ancestor_models=tuple(
                tuple(str(m) for m in e["models"]) for _, e in above_entries if e.get("models")
            ),
        )
    return GrantView(
        id=grant.id,
        account_id=grant.account_id,
        client_name=grant.client_name,
        expires_at=expires_at,
        revoked=revoked,
        entries=entries,
        ancestry=tuple(grant.ancestry or ()),
    )
