"""``okap-server rotate-master-key``: re-encrypt every secret under a new master key."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from okap_server.cli.common import CliError, open_vault_or_fail, settings_from_env
from okap_server.vault.masterkey import encode_master_key
from okap_server.vault.rotation import RotationError, rotate_with_env_key, rotate_with_key_file


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "rotate-master-key",
        help="re-encrypt every stored secret under a new master key, in one transaction",
        description=(
            "Stop every running okap server first: they hold the old key. With a key file in "
            "OKAP_HOME the file is replaced. With OKAP_MASTER_KEY the new key is printed once "
            "on stdout (or written to --new-key-file) and you update the environment."
        ),
    )
    parser.add_argument(
        "--new-key-file",
        type=Path,
        default=None,
        help="with OKAP_MASTER_KEY: write the new key to this new file (0600) instead of stdout",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    from_env = settings.master_key is not None
    if args.new_key_file is not None and not from_env:
        raise CliError(
            "--new-key-file is for vaults keyed by OKAP_MASTER_KEY; this vault's key file "
            f"{settings.master_key_file} is replaced in place"
        )
    vault = open_vault_or_fail(settings, create_key=False)
    try:
        with vault.session() as session:
            try:
                if from_env:
                    result = rotate_with_env_key(session, vault.keyring, args.new_key_file)
                else:
                    result = rotate_with_key_file(settings, session, vault.keyring)
            except RotationError as exc:
                raise CliError(str(exc)) from None
    finally:
        vault.dispose()
    done = (
        f"master key rotated: {result.resealed} key(s) re-encrypted "
        f"(key id {result.old_key_id} -> {result.new_key_id})"
    )
    if not from_env:
        print(f"{done}; {settings.master_key_file} updated. Restart running okap servers.")
    elif args.new_key_file is not None:
        print(
            f"{done}; the new key is in {args.new_key_file}. Set OKAP_MASTER_KEY to it, "
            "restart every okap server, then delete that file."
        )
    else:
        print(encode_master_key(result.new_key), flush=True)
        print(
            f"{done}. The new key is printed above, once: set OKAP_MASTER_KEY to it and "
            "restart every okap server; the old key no longer opens this vault.",
            file=sys.stderr,
        )
    return 0
