"""The ``okap-server`` command line: one module per command group, parsed and run here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from okap_server import __version__
from okap_server.cli import (
    api_tokens,
    backup,
    ceilings,
    doctor,
    keys,
    migrate,
    personal_tokens,
    prices,
    rotate,
    serve,
    users,
)
from okap_server.cli.common import CliError, vault_label
from okap_server.cli.secret_input import ARGV_REFUSAL, refuse_secrets_in_argv
from okap_server.settings import SettingsError, load_settings

COMMAND_MODULES = (
    serve,
    migrate,
    users,
    keys,
    ceilings,
    api_tokens,
    personal_tokens,
    doctor,
    prices,
    backup,
    rotate,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="okap-server",
        description="Run and manage an okap vault for AI provider API keys.",
    )
    parser.add_argument("--version", action="version", version=f"okap-server {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(commands)
    _say_which_vault(parser, _which_vault())
    return parser


def _which_vault() -> str:
    """The vault every command here would use, for ``--help``: settings that do not load
    are reported when a command runs, so help still works."""
    try:
        where = vault_label(load_settings())
    except Exception:  # a broken setting must not break --help
        where = "the one in OKAP_HOME (~/.okap unless set)"
    return f"vault: {where}. Set OKAP_HOME or OKAP_DATABASE_URL to use another."


def _say_which_vault(parser: argparse.ArgumentParser, epilog: str) -> None:
    parser.epilog = f"{parser.epilog}\n\n{epilog}" if parser.epilog else epilog
    # Unwrapped: a path broken across lines cannot be copied.
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for action in parser._actions:  # argparse keeps its subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _say_which_vault(child, epilog)


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None) -> int:
    """Run one command; ``stdin`` is where secrets are read from (default: sys.stdin)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        refuse_secrets_in_argv(arguments)
        parser = build_parser()
        try:
            args, extra = parser.parse_known_args(arguments)
        except SystemExit as exc:  # usage error or --help: argparse has printed it
            return exc.code if isinstance(exc.code, int) else 2
        if extra:
            # Not echoed: a stray argument is most often a pasted secret.
            raise CliError(f"{len(extra)} unexpected argument(s); {ARGV_REFUSAL}")
        args.stdin = stdin if stdin is not None else sys.stdin
        code: int = args.handler(args)
    except (CliError, SettingsError) as exc:
        print(f"okap-server: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:  # a corrupt row or a lost connection mid-command
        detail = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
        print(f"okap-server: database error, nothing was changed: {detail}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # e.g. a corrupt row: one line, never a traceback
        detail = (str(exc).strip().splitlines() or [""])[0][:200]
        print(
            f"okap-server: unexpected {type(exc).__name__}: {detail}. Nothing was changed; "
            "`okap-server doctor` checks the vault",
            file=sys.stderr,
        )
        return 1
    return code
