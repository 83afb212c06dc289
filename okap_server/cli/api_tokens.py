"""``okap-server api-tokens``: create, list and revoke ``okapm_`` management tokens.

The token is printed once, on stdout alone (so ``TOKEN=$(okap-server api-tokens create
...)`` captures it); everything else goes to stderr. Only its hash is stored.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlmodel import select

from okap_server.accounts.models import Account
from okap_server.cli.common import CliError, account_by_name, open_vault_or_fail, settings_from_env
from okap_server.clock import isoformat_z
from okap_server.manage.management_tokens import (
    SCOPES,
    ManagementTokenError,
    create_token,
    list_tokens,
    revoke_token,
)


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "api-tokens", help="manage tokens of the /api/v1 management API"
    )
    sub = parser.add_subparsers(dest="api_tokens_command", metavar="ACTION", required=True)

    create = sub.add_parser("create", help="create a token; it is printed once on stdout")
    create.add_argument("--user", required=True, help="the account the token acts as")
    create.add_argument("--name", required=True, help="a label, e.g. 'ci'")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=SCOPES,
        help="repeat for each scope; admin and metrics:read need an admin account",
    )
    create.add_argument("--expires-in", type=int, metavar="DAYS", help="expiry in days")
    create.set_defaults(handler=create_api_token)

    listing = sub.add_parser("list", help="list tokens (never the tokens themselves)")
    listing.add_argument("--user", help="only this account's tokens")
    listing.set_defaults(handler=list_api_tokens)

    revoke = sub.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id", help="the token's id (mgt_...)")
    revoke.set_defaults(handler=revoke_api_token)


def create_api_token(args: argparse.Namespace) -> int:
    vault = open_vault_or_fail(settings_from_env())
    try:
        with vault.session() as session:
            account = account_by_name(session, args.user)
            try:
                row, token = create_token(
                    session,
                    account,
                    name=args.name,
                    scopes=list(args.scope),
                    expires_in_days=args.expires_in,
                )
            except ManagementTokenError as exc:
                raise CliError(f"{exc}; nothing was stored") from None
            session.commit()
        print(token)
        print(f"created {row.id} for {account.username}: {' '.join(row.scopes)}", file=sys.stderr)
        return 0
    finally:
        vault.dispose()


def list_api_tokens(args: argparse.Namespace) -> int:
    vault = open_vault_or_fail(settings_from_env())
    try:
        with vault.session() as session:
            account_id = account_by_name(session, args.user).id if args.user else None
            names = {a.id: a.username for a in session.exec(select(Account)).all()}
            rows = list_tokens(session, account_id)
        if not rows:
            print("no management tokens")
        for row in rows:
            state = "revoked" if row.revoked_at else "active"
            expires = isoformat_z(row.expires_at) if row.expires_at else "never"
            used = isoformat_z(row.last_used_at) if row.last_used_at else "never"
            print(
                f"{row.id}  {names.get(row.account_id, '?')}  {row.name}  {state}  "
                f"scopes={','.join(row.scopes)}  expires={expires}  last_used={used}"
            )
        return 0
    finally:
        vault.dispose()


def revoke_api_token(args: argparse.Namespace) -> int:
    vault = open_vault_or_fail(settings_from_env())
    try:
        with vault.session() as session:
            row = revoke_token(session, args.id)
            if row is None:
                raise CliError(f"no management token {args.id!r}")
            session.commit()
        print(f"revoked {row.id}")
        return 0
    finally:
        vault.dispose()
