"""The ``okap-server`` command line: one module per command group."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from okap_server.cli import serve
from okap_server.cli.common import CliError
from okap_server.settings import SettingsError

COMMAND_MODULES = (serve,)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="okap-server",
        description="Run and manage an okap vault for AI provider API keys.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except (CliError, SettingsError) as exc:
        print(f"okap-server: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
