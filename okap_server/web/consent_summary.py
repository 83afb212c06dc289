"""What the consent page states before Approve: each entry's limits as the grant will get
them, the spend the app could reach in a month across every provider, and where the expiry
came from (the app, or the vault's default: the request stores which, ``expiry_asked``).

The person approves what the page says, so every number here comes from the same
``effective_limits`` the narrowing uses: a limit the app named, else the deciding account's
default, else none. A request that names none of the spend limits therefore still gets the
default spend limits; only a person clearing them on the page removes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from okap_server.catalog import ProviderCatalog
from okap_server.dashboard.formatting import aware, limit_value, usd
from okap_server.grants.capabilities import LIMIT_NAMES
from okap_server.grants.models import Grant

# A calendar month has at most 31 days: the most a daily limit lets through in one.
DAYS_IN_A_MONTH = 31


def monthly_reach(limits: Mapping[str, Any]) -> float | None:
    """The most one entry may spend in a month under ``limits``; None = unbounded.

    The tightest of the monthly limit, the total limit and 31 days of the daily limit."""
    bounds = [
        float(limits[name]) * (DAYS_IN_A_MONTH if name == "daily_spend" else 1)
        for name in ("monthly_spend", "total_spend", "daily_spend")
        if limits.get(name) is not None
    ]
    return min(bounds) if bounds else None


def limits_line(limits: Mapping[str, Any]) -> list[str]:
    """The limits that are set, as people read them: ``$10.00 a month``, ``60 requests a
    minute``; the page adds "no spend limit" itself when none of the spend ones is set."""
    return [limit_value(name, limits[name]) for name in LIMIT_NAMES if limits.get(name) is not None]


def input_value(name: str, value: Any) -> str:
    """A limit as its field starts, written as the page writes numbers: thousands grouped
    (``1,000``; money ``1,234.50`` after the field's ``$``), cents for money unless that
    would round an asked amount up past what was asked (``0.005`` stays ``0.005``).
    ``consent_form.parse_number`` reads every one of these back."""
    if value is None:
        return ""
    if name.endswith("_spend"):
        amount = float(value)
        return f"{amount:,.2f}" if round(amount, 2) == amount else f"{amount:,.15g}"
    return f"{int(value):,}"


@dataclass(frozen=True)
class Summary:
    """The top of the page: what the whole request adds up to if approved as shown."""

    providers: list[str]  # the names, in request order
    spend_reach: float  # summed over the providers that have a spend limit
    unbounded: list[str]  # names of the providers without any spend limit
    earliest_expiry: datetime | None
    latest_expiry: datetime | None
    expiry_asked: bool  # some entry's expiry is the app's, not the vault's default

    @property
    def expiry_text(self) -> str:
        if self.earliest_expiry == self.latest_expiry:
            return when(self.latest_expiry)
        return f"between {when(self.earliest_expiry)} and {when(self.latest_expiry)}"

    @property
    def spend_text(self) -> str:
        """``up to $15.00 / month across 3 providers``; ``... on OpenAI`` for one."""
        many = len(self.providers) > 1
        where = f"across {len(self.providers)} providers" if many else f"on {self.providers[0]}"
        if len(self.unbounded) == len(self.providers):
            return f"no spend limit {where}"
        text = f"up to {usd(self.spend_reach)} / month {where}"
        if self.unbounded:
            text += f", plus whatever {', '.join(self.unbounded)} may spend (no spend limit)"
        return text


def summarise(entries: Sequence[Any]) -> Summary:
    """Add up the entries as shown (``EntryView``s: ``effective``, ``provider_name``,
    ``expires_at``)."""
    reach = 0.0
    unbounded = []
    for entry in entries:
        one = monthly_reach(entry.effective)
        if one is None:
            unbounded.append(entry.provider_name)
        else:
            reach += one
    times = [e.expires_at for e in entries if e.expires_at is not None]
    return Summary(
        providers=[e.provider_name for e in entries],
        spend_reach=reach,
        unbounded=unbounded,
        earliest_expiry=min(times) if times else None,
        latest_expiry=max(times) if times else None,
        expiry_asked=any(e.expires_asked for e in entries),
    )


def when(value: datetime | None) -> str:
    """``2 Jan 2027, 13:12 UTC``: the page's one way to write an instant."""
    return value.strftime("%-d %b %Y, %H:%M UTC") if value else ""


@dataclass(frozen=True)
class ExistingAccess:
    """The live grant this app already holds for the same request, as the page names it."""

    grant_id: str
    approved: str
    until: str
    providers: list[str]


def existing_view(grant: Grant, catalog: ProviderCatalog) -> ExistingAccess:
    names = []
    for entry in grant.details:
        row = catalog.get(entry["provider"])
        names.append(row.name if row is not None else entry["provider"])
    return ExistingAccess(
        grant_id=grant.id,
        approved=when(aware(grant.created_at)),
        until=when(aware(grant.expires_at)),
        providers=names,
    )
