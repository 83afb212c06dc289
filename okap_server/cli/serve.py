"""``okap-server serve``: migrate, then run the vault."""

from __future__ import annotations

import argparse
import errno
import os
import socket
from typing import Any

import uvicorn

from okap_server.accounts.setup import issue_setup_token, setup_path
from okap_server.app import create_app
from okap_server.cli.arenas import cap_malloc_arenas
from okap_server.cli.common import (
    CliError,
    open_vault_or_fail,
    settings_from_env,
    translated_failures,
    vault_label,
)
from okap_server.cli.protocol import uvicorn_options
from okap_server.prices.overrides import read_overrides
from okap_server.telemetry.logs import log_config
from okap_server.telemetry.multiprocess import prepare as prepare_metrics_directory
from okap_server.telemetry.tracing import check as check_tracing


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser("serve", help="run the vault")
    parser.add_argument("--host", default=None, help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port to listen on (8400)")
    parser.add_argument(
        "--open-browser", action="store_true", help="open consent pages in this machine's browser"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="server processes sharing the port (1); limits hold across them",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    cap_malloc_arenas()  # before any thread starts; workers inherit it (cli/arenas.py)
    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.open_browser:
        overrides["open_browser"] = True
    if args.workers is not None:
        overrides["workers"] = args.workers
    # With --workers, the directory where their metrics meet, emptied (telemetry/).
    settings = prepare_metrics_directory(settings_from_env().model_copy(update=overrides))
    print(f"vault: {vault_label(settings)}", flush=True)
    check_tracing(settings)  # a bad OTEL_* setting stops start-up, in one line
    if settings.prices_file is not None:
        read_overrides(settings.prices_file)  # a bad file stops start-up, in one line
    vault = open_vault_or_fail(settings)  # a damaged vault is named before a taken port
    refuse_a_taken_port(settings.host, settings.port)
    with translated_failures(settings), vault.session() as session:
        token = issue_setup_token(session, settings.setup_token_ttl_seconds)
    print(f"okap vault listening on {settings.effective_public_url}", flush=True)
    if token is not None:
        # The operator's console is the one place this link is shown; it is never logged.
        hours = settings.setup_token_ttl_seconds / 3600
        print(
            "This vault has no account yet. Open this one-time link to create the owner "
            f"account:\n\n    {settings.effective_page_url}{setup_path(token)}\n\n"
            f"It works once, for {hours:g} hours. Or run: okap-server users add NAME\n",
            flush=True,
        )
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "proxy_headers": False,
        "server_header": False,
        **({"log_config": config} if (config := log_config(settings)) else {}),
        **uvicorn_options(settings),
    }
    if settings.workers > 1:
        # The vault is migrated and its master key checked here, once; each worker then
        # opens it from the same settings. The command line's choices reach them as
        # environment variables, so links and the browser behave as asked.
        vault.dispose()
        os.environ.update(
            OKAP_HOST=settings.host,
            OKAP_PORT=str(settings.port),
            OKAP_OPEN_BROWSER="true" if settings.open_browser else "false",
        )
        uvicorn.run(
            "okap_server.app:app_from_env", factory=True, workers=settings.workers, **options
        )
        return 0
    try:
        uvicorn.Server(uvicorn.Config(create_app(vault), **options)).run()
    finally:
        vault.dispose()
    return 0


def refuse_a_taken_port(host: str, port: int) -> None:
    """Stop before claiming to listen: uvicorn would print its own traceback-like error after
    our "listening on" line, and a person reads the first line, not the last."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CliError(f"cannot listen on {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            reason = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise CliError(
                f"port {port} on {host} is {reason}: stop what uses it, or pass --port"
            ) from None
