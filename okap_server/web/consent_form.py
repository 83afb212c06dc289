"""The consent page's view model and the parsing of its form into narrowing choices.

Field names, per requested entry ``i`` (0-based, in request order):
``d{i}.include`` (checkbox), ``d{i}.models`` (one checkbox per asked model) or
``d{i}.models_text`` (comma-separated, when all models were asked), ``d{i}.capabilities``,
``d{i}.limit.<name>`` (number; empty = no limit of that kind, allowed only for a limit
the app did not ask for; absent = keep what the page showed), ``d{i}.expires``
(``YYYY-MM-DDTHH:MM``, UTC), ``d{i}.key_id`` (select), ``d{i}.new_key`` and
``d{i}.new_key_label`` (add a key right there), and ``decision`` = ``approve`` | ``deny``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from okap_server.authorization.clients import ascii_host, callback_is_risky
from okap_server.authorization.defaults import effective_limits
from okap_server.authorization.details import parse_time
from okap_server.authorization.models import AuthorizationRequest
from okap_server.authorization.narrowing import Narrowing, NarrowingError
from okap_server.catalog import ProviderCatalog
from okap_server.dashboard.formatting import COUNT_NOUNS, limit_value, plural, usd
from okap_server.grants.capabilities import LIMIT_LABELS, LIMIT_NAMES, SPEND_LIMITS
from okap_server.settings import DefaultLimits
from okap_server.vault.keys import KeyInfo
from okap_server.web.consent_summary import (
    input_value,
    limits_line,
    monthly_reach,
    when,
)

FLOW_LABELS: dict[str, str] = {
    "code": "through your browser (OAuth)",
    "device": "from another device",
    "okap": "directly (OKAP)",
    "reference": "directly (OKAP)",
}


@dataclass(frozen=True)
class LimitView:
    """One limit as the form starts: the value the grant gets if left as is."""

    name: str
    label: str
    value: Any  # the effective value: asked, else default; None = no limit
    asked: bool  # the app named it: it may only be lowered

    @property
    def money(self) -> bool:
        return self.name in SPEND_LIMITS

    @property
    def input_value(self) -> str:
        return input_value(self.name, self.value)

    @property
    def format(self) -> str:
        """How this limit is written out, the amount as ``{}`` (``{} a month``, ``at most {}
        token{n} a request``, ``{n}`` being the plural ending): the page's script rewrites
        the Limits line from the fields with it, in the same words as ``limit_value``."""
        sample = 7777
        text = limit_value(self.name, sample)
        noun = COUNT_NOUNS.get(self.name)
        if noun is not None:
            return text.replace(plural(sample, noun), "{} " + noun + "{n}")
        return text.replace(usd(float(sample)) if self.money else f"{sample:,}", "{}")


@dataclass
class EntryView:
    index: int
    provider: str
    provider_name: str
    models: list[str]
    capabilities: list[str]
    limits: list[LimitView]
    expires: str
    expires_input: str
    reason: str | None
    keys: list[KeyInfo] = field(default_factory=list)
    expires_text: str = ""
    expires_at: datetime | None = None
    expires_asked: bool = True
    effective: dict[str, Any] = field(default_factory=dict)

    @property
    def effective_text(self) -> list[str]:
        """The limits the grant gets as the page starts, as people read them."""
        return limits_line(self.effective)

    @property
    def any_spend_limit(self) -> bool:
        return monthly_reach(self.effective) is not None

    @property
    def any_asked(self) -> bool:
        return any(limit.asked for limit in self.limits)

    @property
    def any_default(self) -> bool:
        return any(not limit.asked and limit.value is not None for limit in self.limits)


def _name(catalog: ProviderCatalog, provider: str) -> str:
    row = catalog.get(provider)
    return row.name if row is not None else provider


def entry_views(
    details: Sequence[Mapping[str, Any]],
    catalog: ProviderCatalog,
    keys: Sequence[KeyInfo],
    defaults: DefaultLimits,
    expiry_asked: Sequence[bool] | None = None,
) -> list[EntryView]:
    """What the page shows of each requested entry (``details``: as the app asked; the
    limits it did not name are shown filled from ``defaults``, the deciding account's).
    ``expiry_asked`` is the request's own record of which expiries the app named (None, on
    a request stored before it was kept: none); the others are the vault's default."""
    views = []
    for i, entry in enumerate(details):
        expires = parse_time(entry["expires"])
        asked = entry["limits"]
        effective = effective_limits(asked, defaults)
        views.append(
            EntryView(
                index=i,
                provider=entry["provider"],
                provider_name=_name(catalog, entry["provider"]),
                models=list(entry["models"]),
                capabilities=list(entry["capabilities"]),
                limits=[
                    LimitView(n, LIMIT_LABELS[n], effective[n], asked.get(n) is not None)
                    for n in LIMIT_NAMES
                ],
                expires=entry["expires"],
                expires_input=expires.strftime("%Y-%m-%dT%H:%M") if expires else "",
                reason=entry.get("reason"),
                keys=[k for k in keys if k.provider == entry["provider"]],
                expires_text=when(expires),
                expires_at=expires,
                expires_asked=bool(expiry_asked and i < len(expiry_asked) and expiry_asked[i]),
                effective=effective,
            )
        )
    return views


def punycode_of(url: str | None) -> str | None:
    """The ASCII (punycode, RFC 3492) host of an internationalised URL, shown beside the
    Unicode one so a look-alike such as ``apple.com`` with a Cyrillic ``a`` reads
    ``xn--pple-43d.com``; None for an ASCII host. A host that is not a valid IDN reads as
    such."""
    host = urlsplit(url).hostname if url else None
    if not host or host.isascii():
        return None
    return ascii_host(host) or "not a valid host name"


def request_view(request: AuthorizationRequest) -> dict[str, Any]:
    """What the page says about the app: all self-asserted, shown as unverified."""
    return {
        "client_name": request.client_name,
        "client_id": request.client_id,
        "client_url": request.client_url,
        "client_id_ascii": punycode_of(request.client_id) if "://" in request.client_id else None,
        "client_url_ascii": punycode_of(request.client_url),
        "redirect_host": urlsplit(request.redirect_uri).hostname if request.redirect_uri else None,
        "redirect_host_ascii": punycode_of(request.redirect_uri),
        "risky_callback": callback_is_risky(request.redirect_uri),
        "flow_label": FLOW_LABELS.get(request.flow, request.flow),
    }


# What a limit field may hold: the page's own grouping (``1,000``, ``$1,234.50``) or none
# (``1000``). A comma anywhere else (``1,5``) is refused rather than guessed: it may mean
# 1.5 to the person and 15 to a parser.
GROUPED = re.compile(r"^\$?\s*(?:\d{1,3}(?:,\d{3})+(?:\.\d*)?|[^,$]*)$")


def parse_number(provider: str, name: str, text: str) -> float | int | None:
    """A limit field's value as the form sent it; "" is no limit. It reads back everything
    ``consent_summary.input_value`` writes (``1,000``, ``1,234.50``)."""
    text = text.strip()
    if not text:
        return None
    match = GROUPED.match(text)
    try:
        if match is None:
            raise ValueError(text)
        value = float(text.lstrip("$").strip().replace(",", ""))
    except ValueError:
        raise NarrowingError(f"{provider}: {LIMIT_LABELS[name]} must be a number") from None
    if not math.isfinite(value):
        raise NarrowingError(f"{provider}: {LIMIT_LABELS[name]} must be a number")
    if name not in SPEND_LIMITS and value.is_integer():
        return int(value)
    return value


@dataclass
class ConsentChoices:
    narrowing: dict[str, Narrowing]
    new_keys: dict[str, tuple[str, str]]  # provider -> (label, secret)


def parse_choices(
    details: Sequence[Mapping[str, Any]], form: Mapping[str, Sequence[str]]
) -> ConsentChoices:
    """Turn the posted form into per-provider narrowing; malformed input is a NarrowingError."""

    def one(name: str) -> str:
        values = form.get(name) or []
        return values[0] if values else ""

    choices: dict[str, Narrowing] = {}
    new_keys: dict[str, tuple[str, str]] = {}
    for i, entry in enumerate(details):
        provider = entry["provider"]
        prefix = f"d{i}."
        models: list[str] | None
        if entry["models"]:
            models = list(form.get(prefix + "models") or [])
        else:
            text = one(prefix + "models_text")
            models = [m.strip() for m in text.split(",") if m.strip()] or None
        expires: datetime | None = None
        asked = parse_time(entry["expires"])
        shown = asked.strftime("%Y-%m-%dT%H:%M") if asked else ""
        text = one(prefix + "expires").strip()
        if text and text != shown:  # untouched: keep the exact asked expiry
            expires = parse_time(text)
            if expires is None:
                raise NarrowingError(f"{provider}: the expiry is not a date and time")
        choices[provider] = Narrowing(
            include=bool(one(prefix + "include")),
            models=models,
            capabilities=list(form.get(prefix + "capabilities") or []),
            # A browser sends every field, an emptied one as "": that clears the limit. A
            # field not sent at all keeps what the page showed.
            limits={
                name: parse_number(provider, name, one(f"{prefix}limit.{name}"))
                for name in LIMIT_NAMES
                if f"{prefix}limit.{name}" in form
            },
            expires=expires,
            key_id=one(prefix + "key_id") or None,
        )
        secret = one(prefix + "new_key")
        if secret.strip():
            new_keys[provider] = (one(prefix + "new_key_label").strip() or "default", secret)
    return ConsentChoices(choices, new_keys)
