"""``okap-server prices``: where the vault's prices come from, what one model costs, which
models of live grants have none, and a refresh of the data without upgrading okap."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from okap_server.catalog import ProviderCatalog
from okap_server.cli.common import CliError, engine_or_fail, settings_from_env
from okap_server.prices import Prices
from okap_server.prices.snapshot import RefreshError, forget, refresh
from okap_server.prices.unpriced import UnpricedModel, unpriced_in_live_grants
from okap_server.settings import Settings


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "prices",
        help="show the price data, look up a model, refresh the data",
        description="With no action: the source, package version and data date of the "
        "prices, and the models of live grants that have no price.",
    )
    parser.set_defaults(handler=summary)
    sub = parser.add_subparsers(dest="prices_command", metavar="ACTION")
    show = sub.add_parser("show", help="what one model costs, and where the price is from")
    show.add_argument("provider", help="okap provider id, e.g. groq")
    show.add_argument("model", help="model name, e.g. llama-3.3-70b-versatile")
    show.set_defaults(handler=show_price)
    fetch = sub.add_parser(
        "refresh",
        help="fetch the current genai-prices data (no okap upgrade needed); "
        "the vault uses it from its next start",
    )
    fetch.add_argument(
        "--url",
        default=None,
        help="fetch from here (default: OKAP_PRICES_UPDATE_URL, else the genai-prices update URL)",
    )
    fetch.set_defaults(handler=refresh_prices)
    reset = sub.add_parser("reset", help="drop refreshed data: back to the shipped snapshot")
    reset.set_defaults(handler=reset_prices)


def load_prices(settings: Settings) -> tuple[Prices, ProviderCatalog]:
    catalog = ProviderCatalog.from_settings(settings)
    return Prices.load(settings, catalog.prices_providers()), catalog


def describe_unpriced(item: UnpricedModel) -> str:
    """One line: the grant, the model, and what a call to it does."""
    effect = (
        "refused under its spend limit"
        if item.spend_limited
        else "recorded at no cost (no spend limit)"
    )
    return f"{item.client_name} ({item.grant_id}): {item.provider} {item.model}, {effect}"


def summary(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    prices, catalog = load_prices(settings)
    info = prices.info
    print(f"source:   {info.source} ({info.origin})")
    print(f"package:  genai-prices {info.package_version}")
    print(f"data:     {info.data_date}")
    print(f"override: {settings.prices_file or 'none (OKAP_PRICES_FILE)'}")
    fallback = settings.fallback_price_per_million
    print(
        "fallback: "
        + (
            f"${fallback:g} per million tokens"
            if fallback is not None
            else "none: unpriced models are refused under a spend limit"
        )
    )
    engine = engine_or_fail(settings)
    try:
        with Session(engine) as session:
            unpriced = unpriced_in_live_grants(session, prices, catalog, settings.default_limits)
    except SQLAlchemyError:
        print("live grants: not checked (no vault database yet: `okap-server serve` makes one)")
        return 0
    finally:
        engine.dispose()
    if not unpriced:
        print("live grants: every model they name has a price")
        return 0
    print(f"live grants: {len(unpriced)} model(s) without a price:")
    for item in unpriced:
        print(f"  {describe_unpriced(item)}")
    return 1


def show_price(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    prices, catalog = load_prices(settings)
    provider = catalog.canonical(args.provider)
    if provider is None:
        raise CliError(f"unknown provider {args.provider!r}; known: {', '.join(catalog.ids())}")
    price = prices.known(provider, args.model)
    if price is None:
        fallback = prices.fallback(provider, args.model)
        then = (
            f"charged at the fallback, {fallback.describe()}"
            if fallback
            else "refused under a spend limit"
        )
        print(f"{provider} {args.model}: no price listed; calls are {then}")
        return 1
    print(f"{provider} {args.model}: {price.describe()}")
    print(f"  from {price.source}, listed as {price.listed_as}")
    return 0


def refresh_prices(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    url = args.url or settings.prices_update_url
    try:
        count = refresh(settings.home, url, settings.doctor_timeout_seconds)
    except RefreshError as exc:
        raise CliError(
            f"could not refresh prices: {exc}. The vault keeps the prices it has "
            f"({load_prices(settings)[0].info.source})"
        ) from None
    print(f"fetched prices of {count} providers; the vault uses them from its next start")
    return 0


def reset_prices(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    dropped = forget(settings.home)
    print("dropped the refreshed prices" if dropped else "no refreshed prices to drop")
    print("the vault uses the shipped genai-prices snapshot from its next start")
    return 0
