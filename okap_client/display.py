"""Plain-text rendering of grants, usage and cache entries for the ``okap`` command line."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from okap_client.token import OkapToken, parse_instant
from okap_client.usage import Usage

_LIMIT_LABELS: Mapping[str, tuple[str, bool]] = MappingProxyType(
    {
        "monthly_spend": ("monthly spend", True),
        "daily_spend": ("daily spend", True),
        "total_spend": ("total spend", True),
        "requests_per_minute": ("requests/minute", False),
        "requests_per_day": ("requests/day", False),
        "tokens_per_request": ("tokens/request", False),
    }
)


def when(moment: datetime | str | None) -> str:
    instant = parse_instant(moment) if isinstance(moment, str) else moment
    return instant.strftime("%Y-%m-%d %H:%M UTC") if instant else "never"


def limits_text(limits: Mapping[str, Any]) -> str:
    parts = []
    for name, value in limits.items():
        if value is None:
            continue
        label, is_money = _LIMIT_LABELS.get(name, (name, False))
        parts.append(f"{label} {money(value)}" if is_money else f"{label} {value}")
    return ", ".join(parts) or "none"


def grant_lines(token: OkapToken) -> list[str]:
    lines = []
    for entry in token.authorization_details:
        provider = str(entry.get("provider", "?"))
        lines.append(f"{provider}: base URL {token.base_url_for(provider)}")
        lines.append(f"  models        {', '.join(entry.get('models') or []) or 'all'}")
        lines.append(f"  capabilities  {', '.join(entry.get('capabilities') or []) or 'all'}")
        lines.append(f"  limits        {limits_text(entry.get('limits') or {})}")
    lines.append(f"expires         {when(token.expires_at)}")
    return lines


def money(amount: Any) -> str:
    value = float(amount)
    if 0 < abs(value) < 0.01:
        return f"${value:.6f}".rstrip("0")
    return f"${value:.2f}"


def _window(window: Mapping[str, Any], in_usd: bool) -> str | None:
    limit = window.get("limit")
    used = window.get("used") or 0
    if limit is None:
        return None
    if in_usd:
        return f"{money(used)} of {money(limit)}"
    return f"{used} of {limit}"


def usage_lines(usage: Usage) -> list[str]:
    lines = []
    for provider, data in usage.providers.items():
        parts = []
        for kind, in_usd in (("spend", True), ("requests", False)):
            for period, windows in (data.get(kind) or {}).items():
                text = _window(windows or {}, in_usd)
                if text:
                    parts.append(f"{kind} {period} {text}")
        lines.append(f"used ({provider}): {'; '.join(parts) or 'no limits'}")
    return lines


def _ps_escape(value: str) -> str:
    return value.replace("'", "''")


def export_lines(variables: Mapping[str, str], shell: str) -> list[str]:
    if shell == "fish":
        return [f"set -gx {name} {shlex.quote(value)};" for name, value in variables.items()]
    if shell == "powershell":
        return [f"$Env:{name} = '{_ps_escape(value)}'" for name, value in variables.items()]
    if shell == "dotenv":
        return [f"{name}={value}" for name, value in variables.items()]
    return [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]


def unset_lines(names: list[str], shell: str) -> list[str]:
    """Lines that clear variables (``okap env google`` clears ``GEMINI_API_KEY``); a
    dotenv file cannot unset, so it gets none."""
    if shell == "fish":
        return [f"set -e {name};" for name in names]
    if shell == "powershell":
        return [f"Remove-Item Env:{name} -ErrorAction SilentlyContinue" for name in names]
    if shell == "dotenv":
        return []
    return [f"unset {name}" for name in names]
