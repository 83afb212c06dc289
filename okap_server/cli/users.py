"""``okap-server users``: add, list, remove accounts and set passwords."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from okap_server.accounts.models import Account, WebSession
from okap_server.accounts.passwords import hash_password
from okap_server.accounts.service import AccountError, account_count, create_account
from okap_server.accounts.setup import close_setup
from okap_server.audit.events import record_event
from okap_server.cli.common import (
    CliError,
    account_by_name,
    open_vault_or_fail,
    settings_from_env,
    vault_label,
)
from okap_server.cli.secret_input import read_secret
from okap_server.clock import isoformat_z
from okap_server.grants.ceilings import delete_counters
from okap_server.vault.models import ProviderKey


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser("users", help="manage accounts")
    sub = parser.add_subparsers(dest="users_command", metavar="ACTION", required=True)

    add = sub.add_parser("add", help="create an account (the first one is the owner and admin)")
    add.add_argument("name", help="username")
    add.add_argument("--admin", action="store_true", help="make the account an admin")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(handler=add_user)

    listing = sub.add_parser("list", help="list accounts")
    listing.set_defaults(handler=list_users)

    remove = sub.add_parser("remove", help="remove an account with its keys and grants")
    remove.add_argument("name", help="username")
    remove.set_defaults(handler=remove_user)

    passwd = sub.add_parser("set-password", help="set an account's password")
    passwd.add_argument("name", help="username")
    passwd.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    passwd.set_defaults(handler=set_password)


def add_user(args: argparse.Namespace) -> int:
    vault = open_vault_or_fail(settings_from_env())
    try:
        password = read_secret(args.stdin, "password", from_stdin=args.password_stdin, confirm=True)
        with vault.session() as session:
            first = account_count(session) == 0
            try:
                account = create_account(session, args.name, password, is_admin=args.admin)
            except AccountError as exc:
                raise CliError(f"{exc}; nothing was stored") from None
            if first:
                close_setup(session, account)
            record_event(session, "account_created", account_id=account.id, via="cli")
            try:
                session.commit()
            except IntegrityError:
                raise CliError(
                    f"an account named {args.name!r} was just created elsewhere, or the "
                    "vault was just set up through its setup link; nothing was stored"
                ) from None
        role = "owner and admin" if first else ("admin" if account.is_admin else "member")
        print(f"created account {account.username} ({role})")
        return 0
    finally:
        vault.dispose()


def list_users(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    vault = open_vault_or_fail(settings, existing=True)
    print(f"vault: {vault_label(settings)}")
    try:
        with vault.session() as session:
            accounts = session.exec(select(Account).order_by(col(Account.created_at))).all()
            counts = dict(
                session.exec(
                    select(ProviderKey.account_id, func.count()).group_by(
                        col(ProviderKey.account_id)
                    )
                ).all()
            )
        if not accounts:
            print("no accounts yet")
            return 0
        print(f"{'USERNAME':<24} {'ROLE':<8} {'KEYS':>4}  CREATED")
        for account in accounts:
            role = "admin" if account.is_admin else "member"
            if account.disabled:
                role += " (disabled)"
            created = isoformat_z(account.created_at)
            print(f"{account.username:<24} {role:<8} {counts.get(account.id, 0):>4}  {created}")
        return 0
    finally:
        vault.dispose()


def _admins(session: Session) -> int:
    query = select(func.count()).select_from(Account).where(col(Account.is_admin))
    return int(session.exec(query.where(col(Account.disabled).is_(False))).one())


def remove_user(args: argparse.Namespace) -> int:
    vault = open_vault_or_fail(settings_from_env())
    try:
        with vault.session() as session:
            account = account_by_name(session, args.name)
            if account.is_admin and not account.disabled and _admins(session) <= 1:
                raise CliError(
                    f"{account.username} is the vault's last admin; add another admin first. "
                    "Nothing was removed"
                )
            keys = session.exec(
                select(func.count())
                .select_from(ProviderKey)
                .where(ProviderKey.account_id == account.id)
            ).one()
            delete_counters(session, account.id)
            session.delete(account)
            record_event(session, "account_removed", username=account.username, via="cli")
            session.commit()
        print(f"removed account {args.name} and its {keys} key(s) and grants")
        return 0
    finally:
        vault.dispose()


def set_password(args: argparse.Namespace) -> int:
    vault = open_vault_or_fail(settings_from_env())
    try:
        with vault.session() as session:
            account = account_by_name(session, args.name)
            password = read_secret(
                args.stdin, "password", from_stdin=args.password_stdin, confirm=True
            )
            try:
                account.password_hash = hash_password(password)
            except ValueError as exc:
                raise CliError(f"{exc}; nothing was changed") from None
            session.add(account)
            # Every browser signed in with the old password is signed out.
            session.exec(delete(WebSession).where(col(WebSession.account_id) == account.id))
            record_event(session, "password_changed", account_id=account.id, via="cli")
            session.commit()
        print(f"password of {args.name} changed")
        return 0
    finally:
        vault.dispose()
