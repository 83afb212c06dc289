"""``okap-server rotate-master-key``: re-encrypt every secret under a new master key."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from okap_server.cli.common import CliError, open_vault_or_fail, settings_from_env
from okap_server.settings import Settings
from okap_server.vault.crypto import generate_master_key
from okap_server.vault.masterkey import decode_master_key, encode_master_key
from okap_server.vault.rotation import (
    RotationError,
    rotate,
    rotate_with_env_key,
    rotate_with_key_file,
)


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
    rolling = parser.add_mutually_exclusive_group()
    rolling.add_argument(
        "--generate-key",
        action="store_true",
        help="print a fresh master key for a rolling rotation and change nothing",
    )
    rolling.add_argument(
        "--reseal",
        action="store_true",
        help=(
            "rolling rotation, last step: with OKAP_MASTER_KEY (new) and "
            "OKAP_MASTER_KEY_PREVIOUS (old) set, re-encrypt every secret under the new key"
        ),
    )
    parser.set_defaults(handler=run)


def generate_key() -> int:
    print(encode_master_key(generate_master_key()), flush=True)
    print(
        "A new master key is printed above. Restart each okap server with OKAP_MASTER_KEY set "
        "to it and OKAP_MASTER_KEY_PREVIOUS set to the current key, then run "
        "`okap-server rotate-master-key --reseal`.",
        file=sys.stderr,
    )
    return 0


def reseal(settings: Settings) -> int:
    """Reseal under the current OKAP_MASTER_KEY while replicas still accept the previous one."""
    if settings.master_key is None or settings.master_key_previous is None:
        raise CliError(
            "--reseal needs OKAP_MASTER_KEY (the new key) and OKAP_MASTER_KEY_PREVIOUS "
            "(the key being retired)"
        )
    current = decode_master_key(settings.master_key.get_secret_value(), "OKAP_MASTER_KEY")
    vault = open_vault_or_fail(settings, create_key=False)
    try:
        with vault.session() as session:
            try:
                result = rotate(session, vault.keyring, current)
            except RotationError as exc:
                raise CliError(str(exc)) from None
    finally:
        vault.dispose()
    print(
        f"resealed {result.resealed} key(s) under key id {result.new_key_id}. Restart each "
        "okap server without OKAP_MASTER_KEY_PREVIOUS to retire the old key."
    )
    return 0


def run(args: argparse.Namespace) -> int:
    if args.generate_key:
        return generate_key()
    settings = settings_from_env()
    if args.reseal:
        return reseal(settings)
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
