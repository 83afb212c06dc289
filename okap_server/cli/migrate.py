"""``okap-server migrate``: apply pending schema migrations explicitly (``serve`` does it too)."""

from __future__ import annotations

import argparse
from typing import Any

from okap_server.cli.common import engine_or_fail, settings_from_env, translated_failures
from okap_server.db.migrate import current_revision, head_revision, upgrade


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "migrate", help="apply pending database migrations"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="only report; exit 1 when migrations are pending",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    engine = engine_or_fail(settings)
    try:
        with translated_failures(settings):
            before = current_revision(engine)
            head = head_revision()
            if args.check:
                if before == head:
                    print(f"database is up to date (revision {head})")
                    return 0
                print(f"database at revision {before or 'none'}; {head} is pending")
                return 1
            if before == head:
                print(f"database is up to date (revision {head})")
                return 0
            upgrade(engine)
            print(f"migrated database from revision {before or 'none'} to {head}")
            return 0
    finally:
        engine.dispose()
