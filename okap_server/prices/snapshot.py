"""Where the library's price data comes from: the snapshot shipped in the installed
``genai-prices`` package, or a newer copy fetched with ``okap-server prices refresh``.

A refresh downloads the data the library's own updater (:class:`genai_prices.UpdatePrices`)
reads, from the same URL unless ``prices_update_url`` names another, checks it with the
library's parser, and keeps it in the vault's home (``prices/genai-prices.json``). Every
vault process reads that copy at start; when there is none, or it no longer reads, the
shipped snapshot is used. So prices move without upgrading okap, and a vault with no
network keeps the snapshot it shipped with.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import genai_prices
import httpx
from genai_prices.data_snapshot import DataSnapshot
from genai_prices.types import ConditionalPrice, Provider, StartDateConstraint
from genai_prices.update_prices import DEFAULT_UPDATE_URL

DATA_FILE = Path("prices") / "genai-prices.json"
MAX_DATA_BYTES = 64 * 1024 * 1024


class RefreshError(Exception):
    """The price data could not be fetched or did not read; the shipped data stays."""


@dataclass(frozen=True)
class SnapshotInfo:
    """What ``okap-server prices`` shows: where the prices are from and how new they are."""

    source: str  # "shipped" | "refreshed"
    package_version: str
    data_date: str
    origin: str


def _providers_from_raw(raw: Any) -> list[Provider]:
    from genai_prices.types import _providers_from_raw as parse

    providers: list[Provider] = parse(raw)
    return providers


def _newest_price_change(providers: list[Provider]) -> date | None:
    """The latest dated price change already in effect: how current the data is."""
    today = datetime.now(UTC).date()
    dates = [
        c.constraint.start_date
        for p in providers
        for m in p.models
        if isinstance(m.prices, list)
        for c in m.prices
        if isinstance(c, ConditionalPrice)
        and isinstance(c.constraint, StartDateConstraint)
        and c.constraint.start_date <= today
    ]
    return max(dates, default=None)


def load_snapshot(home: Path) -> tuple[DataSnapshot, SnapshotInfo]:
    """The refreshed copy in ``home`` if there is one that reads, else the shipped data."""
    version = genai_prices.__version__
    path = home / DATA_FILE
    unread = ""
    if path.is_file():
        try:
            document = json.loads(path.read_text())
            providers = _providers_from_raw(document["providers"])
            info = SnapshotInfo(
                "refreshed", version, str(document["fetched_at"]), str(document["url"])
            )
            return DataSnapshot(providers, from_auto_update=True), info
        except (OSError, ValueError, KeyError, TypeError):
            # A copy that no longer reads (a newer format): the shipped data stands.
            unread = f"; {path} does not read, run `okap-server prices refresh`"
    from genai_prices.data import providers as shipped

    newest = _newest_price_change(shipped)
    when = f"newest price change {newest}" if newest else "as released"
    info = SnapshotInfo("shipped", version, when, f"genai-prices {version} package{unread}")
    return DataSnapshot(shipped, from_auto_update=False), info


def refresh(home: Path, url: str | None, timeout: float) -> int:
    """Fetch the library's current data and keep it in ``home``; the providers it lists.

    Written to a temporary file and renamed, so a process starting meanwhile reads either
    the old copy or the new one, never half of one."""
    url = url or DEFAULT_UPDATE_URL
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            response = client.get(url)
            response.raise_for_status()
    except httpx.HTTPError as exc:
        raise RefreshError(f"{url}: {type(exc).__name__}: {str(exc)[:200]}") from None
    if len(response.content) > MAX_DATA_BYTES:
        raise RefreshError(f"{url}: over {MAX_DATA_BYTES} bytes")
    try:
        raw = json.loads(response.content)
        if not isinstance(raw, list):
            raise ValueError("expected a list of providers")
        providers = _providers_from_raw(raw)
    except ValueError as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise RefreshError(f"{url}: not genai-prices data ({first})") from None
    fetched = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    path = home / DATA_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"url": url, "fetched_at": fetched, "providers": raw}))
    os.replace(partial, path)
    return len(providers)


def forget(home: Path) -> bool:
    """Drop the refreshed copy: back to the shipped data. Whether there was one."""
    path = home / DATA_FILE
    if path.exists():
        path.unlink()
        return True
    return False
