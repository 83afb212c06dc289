"""``okap-server ceilings``: show and set spend ceilings above the grants.

An account's ceiling (daily, weekly, monthly) caps the sum over all its grants, including
grants approved later; a key's monthly ceiling caps every grant the key backs. The serving
vault picks a change up on each grant's next load (``OKAP_PROXY_GRANT_CACHE_SECONDS``).
"""

from __future__ import annotations

import argparse
from typing import Any

from sqlmodel import col, select

from okap_server.cli.common import CliError, account_by_name, open_vault_or_fail, settings_from_env
from okap_server.clock import utcnow
from okap_server.grants.ceilings import (
    CeilingError,
    ceiling_report,
)
from okap_server.manage import ceilings
from okap_server.vault.models import ProviderKey

CLEAR = "none"


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "ceilings", help="show or set spend ceilings over all of an account's grants or a key's"
    )
    sub = parser.add_subparsers(dest="ceilings_command", metavar="ACTION", required=True)

    show = sub.add_parser("show", help="an account's ceilings and its keys', with what is left")
    show.add_argument("--user", default=None, help="the account (default: the owner)")
    show.set_defaults(handler=show_ceilings)

    account = sub.add_parser("set", help="set the account's ceilings (USD; 'none' clears one)")
    account.add_argument("--user", default=None, help="the account (default: the owner)")
    for period in ("daily", "weekly", "monthly"):
        account.add_argument(f"--{period}", metavar="USD", default=None)
    account.set_defaults(handler=set_account)

    key = sub.add_parser("key", help="set a key's monthly ceiling (USD; 'none' clears it)")
    key.add_argument("key_id", metavar="ID", help="the key's id, as `keys list` shows it")
    key.add_argument("--monthly", metavar="USD", required=True)
    key.set_defaults(handler=set_key)


def _usd(value: str) -> str | None:
    return None if value.strip().lower() == CLEAR else value


def _money(window: dict[str, float | None]) -> str:
    used, limit, left = window["used"], window["limit"], window["remaining"]
    if limit is None:
        return f"${used or 0:,.2f} spent, no ceiling"
    return f"${used or 0:,.2f} spent of ${limit:,.2f}, ${left or 0:,.2f} left"


def show_ceilings(args: argparse.Namespace) -> int:
    vault = open_vault_or_fail(settings_from_env())
    try:
        with vault.session() as session:
            account = account_by_name(session, args.user)
            keys = session.exec(
                select(ProviderKey)
                .where(ProviderKey.account_id == account.id)
                .order_by(col(ProviderKey.provider), col(ProviderKey.label))
            ).all()
            report = ceiling_report(session, account, keys, utcnow())
        print(f"account {account.username}")
        for name, label in (("day", "today"), ("week", "this week"), ("month", "this month")):
            print(f"  {label:<11} {_money(report['account'][name])}")
        for key_id, shown in report["keys"].items():
            print(f"key {key_id} ({shown['provider']}, {shown['label']!r})")
            print(f"  {'this month':<11} {_money(shown['month'])}")
        return 0
    finally:
        vault.dispose()


def set_account(args: argparse.Namespace) -> int:
    given = {p: _usd(v) for p in ("daily", "weekly", "monthly") if (v := getattr(args, p))}
    if not given:
        raise CliError("name at least one of --daily, --weekly, --monthly; nothing was changed")
    vault = open_vault_or_fail(settings_from_env())
    try:
        with vault.session() as session:
            account = account_by_name(session, args.user)
            try:
                ceilings.set_account(session, account, given, ip=None, via="cli")
            except CeilingError as exc:
                raise CliError(f"{exc}; nothing was changed") from None
            session.commit()
        shown = ", ".join(f"{p} {'none' if v is None else '$' + v}" for p, v in given.items())
        print(f"ceilings of {account.username}: {shown}")
        return 0
    finally:
        vault.dispose()


def set_key(args: argparse.Namespace) -> int:
    vault = open_vault_or_fail(settings_from_env())
    try:
        with vault.session() as session:
            key = session.get(ProviderKey, args.key_id)
            if key is None:
                raise CliError(
                    f"no key with id {args.key_id!r}; `okap-server keys list` shows the ids"
                )
            monthly = _usd(args.monthly)
            try:
                ceilings.set_key(session, key, monthly, ip=None, via="cli")
            except CeilingError as exc:
                raise CliError(f"{exc}; nothing was changed") from None
            session.commit()
        shown = "none" if monthly is None else f"${monthly} a month"
        print(f"{key.provider} key {key.label!r} ({key.hint}): ceiling {shown}")
        return 0
    finally:
        vault.dispose()
