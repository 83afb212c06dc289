"""``okap-server keys``: add, list, rotate (replace the secret in place), remove (moving the
grants that depend on a key to another first) provider keys, and pick the default.

The key itself is read from stdin or a hidden prompt; output shows hints (``sk-...x7fQ``) only.
Rotate and remove are the use cases the dashboard and the management API call
(``manage.keys``); their cache notices reach running replicas on PostgreSQL.
"""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from okap_server.accounts.models import Account
from okap_server.audit.events import record_event
from okap_server.cli.common import (
    CliError,
    account_by_name,
    open_vault_or_fail,
    settings_from_env,
    tell_replicas,
    unknown_provider,
    vault_label,
)
from okap_server.cli.secret_input import read_secret
from okap_server.clock import isoformat_z
from okap_server.context import Vault
from okap_server.dashboard.keys import LooksMisfiled
from okap_server.manage import keys as manage_keys
from okap_server.vault.key_shapes import misfiled, with_article
from okap_server.vault.keys import KeyStore, KeyStoreError
from okap_server.vault.models import ProviderKey


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser("keys", help="manage provider keys")
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    add = sub.add_parser(
        "add",
        help="store a provider key (read from stdin or a hidden prompt, never the command line)",
    )
    add.add_argument("provider", help="provider id, e.g. openai, anthropic, google")
    add.add_argument("--label", default="default", help="a name for this key (default: default)")
    add.add_argument("--user", default=None, help="owning account (default: the owner)")
    add.add_argument("--default", action="store_true", help="make it the provider's default key")
    add.add_argument("--secret-stdin", action="store_true", help="read the key from stdin")
    add.add_argument(
        "--anyway",
        action="store_true",
        help="store a key that looks like another provider's (sk-ant-... under openai)",
    )
    add.set_defaults(handler=add_key)

    listing = sub.add_parser("list", help="list keys (hints only)")
    listing.add_argument("--user", default=None, help="only this account's keys")
    listing.add_argument("--provider", default=None, help="only this provider's keys")
    listing.set_defaults(handler=list_keys)

    rotate = sub.add_parser(
        "rotate",
        help="replace a key's secret in place (read from stdin or a hidden prompt); the grants "
        "using it keep working, with no new consent",
    )
    _key_arguments(rotate)
    rotate.add_argument("--secret-stdin", action="store_true", help="read the key from stdin")
    rotate.add_argument(
        "--anyway", action="store_true", help="store a secret that looks like another provider's"
    )
    rotate.set_defaults(handler=rotate_key)

    remove = sub.add_parser(
        "remove", help="remove a key: by id, a unique start of it, or provider and label"
    )
    _key_arguments(remove)
    remove.add_argument(
        "--move-to",
        metavar="KEY",
        default=None,
        help="first move the grants using it to this other key of the same provider "
        "(an id, or a unique start of one)",
    )
    remove.add_argument(
        "--break-grants",
        action="store_true",
        help="remove it even though active grants use it (their requests then fail)",
    )
    remove.set_defaults(handler=remove_key)

    default = sub.add_parser("default", help="make a key its provider's default")
    _key_arguments(default)
    default.set_defaults(handler=set_default)


def _key_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "key_id",
        metavar="ID|PROVIDER",
        help="the key's id as `keys list` shows it, or a unique start of it (a7f3); "
        "or its provider, followed by LABEL",
    )
    parser.add_argument("label", metavar="LABEL", nargs="?", help="the key's label")
    parser.add_argument("--user", default=None, help="the account owning it (with LABEL)")


def _provider(vault: Vault, name: str, *, outcome: str = "") -> str:
    """The canonical id; ``outcome`` ("nothing was stored") only where something was asked."""
    canonical = vault.providers.canonical(name)
    if canonical is None:
        tail = f". {outcome.capitalize()}" if outcome else ""
        raise CliError(unknown_provider(name, vault.providers.ids()) + tail)
    return canonical


def add_key(args: argparse.Namespace) -> int:
    vault = open_vault_or_fail(settings_from_env())
    try:
        provider = _provider(vault, args.provider, outcome="nothing was stored")
        with vault.session() as session:
            account = account_by_name(session, args.user)
            row = vault.providers.get(provider)
            name = row.name if row else provider
            secret = read_secret(args.stdin, f"{name} API key", from_stdin=args.secret_stdin)
            suspicion = None if args.anyway else misfiled(provider, secret)
            if suspicion is not None:
                owner, prefix = suspicion
                theirs = vault.providers.get(owner)
                looks = with_article(theirs.name if theirs else owner)
                raise CliError(
                    f"this looks like {looks} key (it starts with {prefix}), not "
                    f"{with_article(name)} key: run `okap-server keys add {owner}`, or pass "
                    "--anyway. Nothing was stored"
                )
            try:
                shown = vault.keys.add(
                    session,
                    account_id=account.id,
                    provider=provider,
                    label=args.label,
                    secret=secret,
                    make_default=args.default,
                )
            except KeyStoreError as exc:
                raise CliError(f"{exc}; nothing was stored") from None
            record_event(
                session,
                "key_added",
                account_id=account.id,
                key_id=shown.id,
                provider=provider,
                label=shown.label,
                hint=shown.hint,
                via="cli",
            )
            try:
                session.commit()
            except IntegrityError:
                raise CliError(
                    f"there is already a key labelled {shown.label!r} for {provider}; "
                    "nothing was stored"
                ) from None
        default = ", default" if shown.is_default else ""
        print(
            f"stored {provider} key {shown.label!r} ({shown.hint}) for {account.username}: "
            f"{shown.id}{default}"
        )
        return 0
    finally:
        vault.dispose()


def list_keys(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    vault = open_vault_or_fail(settings, existing=True)
    print(f"vault: {vault_label(settings)}")
    try:
        with vault.session() as session:
            query = select(ProviderKey, Account.username).join(
                Account, col(Account.id) == col(ProviderKey.account_id)
            )
            if args.user is not None:
                query = query.where(Account.id == account_by_name(session, args.user).id)
            if args.provider is not None:
                query = query.where(ProviderKey.provider == _provider(vault, args.provider))
            rows = session.exec(
                query.order_by(
                    col(Account.username), col(ProviderKey.provider), col(ProviderKey.label)
                )
            ).all()
        if not rows:
            print("no keys stored")
            return 0
        header = f"{'ID':<36}  {'USER':<16} {'PROVIDER':<11} {'LABEL':<16} {'KEY':<14} DEFAULT"
        print(header + "  LAST USED")
        for key, username in rows:
            used = isoformat_z(key.last_used_at) if key.last_used_at else "never"
            mark = "yes" if key.is_default else ""
            print(
                f"{key.id:<36}  {username:<16} {key.provider:<11} {key.label:<16} "
                f"{key.hint:<14} {mark:<7}  {used}"
            )
        return 0
    finally:
        vault.dispose()


def _key(vault: Vault, args: argparse.Namespace) -> ProviderKey:
    """The one key meant: ids are long UUIDs, so a unique start of one, or the provider and
    label a person chose, name it as well. Anything ambiguous changes nothing."""
    with vault.session() as session:
        if args.label is not None:
            provider = _provider(vault, args.key_id, outcome="nothing was changed")
            query = select(ProviderKey).where(
                ProviderKey.provider == provider, ProviderKey.label == args.label
            )
            if args.user is not None:
                owner = account_by_name(session, args.user)
                query = query.where(ProviderKey.account_id == owner.id)
            found = session.exec(query).all()
            what = f"{provider} key labelled {args.label!r}"
        else:
            exact = session.get(ProviderKey, args.key_id)
            found = [exact] if exact else []
            if not found and args.key_id:
                prefix = select(ProviderKey).where(col(ProviderKey.id).startswith(args.key_id))
                found = list(session.exec(prefix.limit(2)).all())
            what = f"key with an id starting {args.key_id!r}"
    if not found:
        raise CliError(f"no {what}; `okap-server keys list` shows ids, providers and labels")
    if len(found) > 1:
        more = "pass --user NAME" if args.label is not None else "give more of the id"
        raise CliError(f"more than one {what}: {more}. Nothing was changed")
    return found[0]


def rotate_key(args: argparse.Namespace) -> int:
    vault = open_vault_or_fail(settings_from_env())
    try:
        tell_replicas(vault)
        key = _key(vault, args)
        row = vault.providers.get(key.provider)
        name = row.name if row else key.provider
        secret = read_secret(args.stdin, f"new {name} API key", from_stdin=args.secret_stdin)
        try:
            shown = manage_keys.update_key(
                vault,
                key.account_id,
                key.id,
                secret=secret,
                ip=None,
                via="cli",
                misfiled_ok=args.anyway,
            )
        except LooksMisfiled:
            raise CliError(
                f"this looks like another provider's key, not {with_article(name)} key: pass "
                "--anyway if it is one. Nothing was changed"
            ) from None
        except KeyStoreError as exc:
            raise CliError(f"{exc}; nothing was changed") from None
        if shown is None:
            raise CliError("the key was removed meanwhile; nothing was changed")
        print(
            f"replaced the secret of {shown.provider} key {shown.label!r}: now {shown.hint}. "
            "Grants using it keep working and send the new key from their next request"
        )
        return 0
    finally:
        vault.dispose()


def remove_key(args: argparse.Namespace) -> int:
    vault = open_vault_or_fail(settings_from_env())
    try:
        tell_replicas(vault)
        key = _key(vault, args)
        move_to = None
        if args.move_to is not None:
            target = _key(vault, argparse.Namespace(key_id=args.move_to, label=None, user=None))
            move_to = target.id
        try:
            shown = manage_keys.remove_key(
                vault,
                key.account_id,
                key.id,
                move_to=move_to,
                break_grants=args.break_grants,
                ip=None,
                via="cli",
            )
        except manage_keys.KeyInUse as exc:
            raise CliError(
                f"{exc}: pass --move-to KEY to move them to another {key.provider} key first, "
                "or --break-grants to remove it anyway. Nothing was changed"
            ) from None
        except KeyStoreError as exc:
            raise CliError(f"{exc}; nothing was changed") from None
        if shown is None:
            raise CliError("the key was removed meanwhile")
        moved = f"; its grants now use {move_to}" if move_to else ""
        print(f"removed {shown.provider} key {shown.label!r} ({shown.hint}){moved}")
        return 0
    finally:
        vault.dispose()


def set_default(args: argparse.Namespace) -> int:
    vault = open_vault_or_fail(settings_from_env())
    try:
        key = _key(vault, args)
        with vault.session() as session:
            KeyStore.set_default(session, key.account_id, key.id)
            record_event(
                session,
                "key_default_changed",
                account_id=key.account_id,
                key_id=key.id,
                provider=key.provider,
                via="cli",
            )
            session.commit()
        print(f"{key.provider} key {key.label!r} ({key.hint}) is now the default")
        return 0
    finally:
        vault.dispose()
