"""The ``okap-server`` command line.

Kept free of server imports: ``pip install okap-vault`` (the app SDK) installs this command
too, without the server's dependencies, and it must then say what to install instead of
crashing with ``ModuleNotFoundError``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

# Top-level modules of the ``server`` extra (pyproject.toml) and what they pull in.
SERVER_MODULES = frozenset(
    {
        "alembic",
        "aiohttp",
        "argon2",
        "authlib",
        "cryptography",
        "fastapi",
        "jinja2",
        "multipart",
        "psycopg",
        "pydantic",
        "pydantic_settings",
        "sqlalchemy",
        "sqlmodel",
        "starlette",
        "uvicorn",
    }
)
INSTALL_SERVER = (
    "the vault's server parts are not installed here (no module {name!r}). "
    "Install okap-vault[server]; from a checkout: pip install '.[server]'"
)


def build_parser() -> argparse.ArgumentParser:
    from okap_server.cli.commands import build_parser as build

    return build()


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None) -> int:
    """Run one command; ``stdin`` is where secrets are read from (default: sys.stdin)."""
    try:
        from okap_server.cli.commands import main as run
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in SERVER_MODULES:
            raise
        print(f"okap-server: {INSTALL_SERVER.format(name=top)}", file=sys.stderr)
        return 2
    return run(argv, stdin=stdin)


if __name__ == "__main__":
    sys.exit(main())
