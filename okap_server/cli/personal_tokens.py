"""``okap-server tokens create``: a personal token for the person at the machine, without
an app flow. The same use case as ``POST /api/v1/tokens`` (``manage/personal.py``): the
same validation, default limits, expiry and backing keys as consent. The ``okap_`` token
is printed once, alone on stdout; only its hash is stored."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from okap_server.authorization.details import DETAILS_TYPE
from okap_server.authorization.errors import InvalidAuthorizationDetails
from okap_server.cli.common import CliError, account_by_name, open_vault_or_fail, settings_from_env
from okap_server.manage.personal import mint_personal


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "tokens", help="mint personal okap_ tokens for scripts"
    )
    sub = parser.add_subparsers(dest="tokens_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="mint a personal token; printed once on stdout")
    create.add_argument("--user", help="the account (default: the only one, else the owner)")
    create.add_argument("--name", required=True, help="what the token is for, e.g. 'nightly job'")
    create.add_argument("--provider", action="append", default=[], help="repeat per provider")
    create.add_argument("--model", action="append", default=[], help="allowed model (repeat)")
    create.add_argument(
        "--details", help="authorization_details as JSON, instead of --provider/--model"
    )
    create.set_defaults(handler=create_personal_token)


def _details(args: argparse.Namespace) -> Any:
    if args.details:
        if args.provider or args.model:
            raise CliError("give --details or --provider/--model, not both")
        try:
            return json.loads(args.details)
        except ValueError:
            raise CliError("--details: not valid JSON") from None
    if not args.provider:
        raise CliError("name at least one --provider (or --details)")
    return [
        {"type": DETAILS_TYPE, "provider": p, **({"models": args.model} if args.model else {})}
        for p in args.provider
    ]


def create_personal_token(args: argparse.Namespace) -> int:
    details = _details(args)
    vault = open_vault_or_fail(settings_from_env())
    try:
        with vault.session() as session:
            account_id = account_by_name(session, args.user).id
        try:
            grant, token = mint_personal(vault, account_id, args.name, details, ip=None)
        except InvalidAuthorizationDetails as exc:
            raise CliError(f"{exc.description}; nothing was stored") from None
        print(token)
        base = f"{vault.settings.effective_public_url}/v1"
        print(f"created {grant.id}; base URL {base}/PROVIDER", file=sys.stderr)
        return 0
    finally:
        vault.dispose()
