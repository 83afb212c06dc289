"""``okap-server serve``: migrate, then run the vault."""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

from okap_server.accounts.setup import issue_setup_token, setup_path
from okap_server.app import create_app
from okap_server.cli.common import open_vault_or_fail, settings_from_env, translated_failures


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser("serve", help="run the vault")
    parser.add_argument("--host", default=None, help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port to listen on (8400)")
    parser.add_argument(
        "--open-browser", action="store_true", help="open consent pages in this machine's browser"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.open_browser:
        overrides["open_browser"] = True
    settings = settings_from_env().model_copy(update=overrides)
    vault = open_vault_or_fail(settings)
    with translated_failures(settings), vault.session() as session:
        token = issue_setup_token(session, settings.setup_token_ttl_seconds)
    print(f"okap vault listening on {settings.effective_public_url}", flush=True)
    if token is not None:
        # The operator's console is the one place this link is shown; it is never logged.
        hours = settings.setup_token_ttl_seconds / 3600
        print(
            "This vault has no account yet. Open this one-time link to create the owner "
            f"account:\n\n    {settings.effective_public_url}{setup_path(token)}\n\n"
            f"It works once, for {hours:g} hours. Or run: okap-server users add NAME\n",
            flush=True,
        )
    config = uvicorn.Config(
        create_app(vault),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=False,
        server_header=False,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        vault.dispose()
    return 0
