"""``okap-server serve``: migrate, then run the vault."""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

from okap_server.app import create_app
from okap_server.cli.common import open_vault_or_fail, settings_from_env


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
    print(f"okap vault listening on {settings.effective_public_url}", flush=True)
    app = create_app(vault)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=False,
        server_header=False,
    )
    vault.dispose()
    return 0
