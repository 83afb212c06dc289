"""``okap-server export FILE`` / ``import FILE``: encrypted, passphrase-protected backups."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from okap_server.cli.common import CliError, open_vault_or_fail, settings_from_env
from okap_server.cli.secret_input import read_secret
from okap_server.manage.backup import BackupError, collect, open_backup, restore, seal_backup


def register(commands: Any) -> None:
    export = commands.add_parser(
        "export", help="write an encrypted backup of accounts, keys, grants and API tokens"
    )
    export.add_argument("file", type=Path, help="backup file to write (mode 0600)")
    export.add_argument("--force", action="store_true", help="overwrite an existing file")
    export.add_argument(
        "--passphrase-stdin", action="store_true", help="read the passphrase from stdin"
    )
    export.set_defaults(handler=run_export)

    imp = commands.add_parser("import", help="restore a backup into this vault")
    imp.add_argument("file", type=Path, help="backup file written by `okap-server export`")
    imp.add_argument(
        "--passphrase-stdin", action="store_true", help="read the passphrase from stdin"
    )
    imp.set_defaults(handler=run_import)


def _write_private(path: Path, data: bytes, *, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise CliError(f"{path} already exists; pass --force to overwrite it")
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from None


def run_export(args: argparse.Namespace) -> int:
    vault = open_vault_or_fail(settings_from_env(), create_key=False)
    try:
        if args.file.exists() and not args.force:
            raise CliError(f"{args.file} already exists; pass --force to overwrite it")
        passphrase = read_secret(
            args.stdin, "backup passphrase", from_stdin=args.passphrase_stdin, confirm=True
        )
        try:
            with vault.session() as session:
                payload, summary = collect(session, vault.keys)
            data = seal_backup(payload, passphrase)
        except BackupError as exc:
            raise CliError(str(exc)) from None
        _write_private(args.file, data, overwrite=args.force)
        print(
            f"wrote {args.file}: {summary.accounts} account(s), {summary.keys} key(s), "
            f"{summary.grants} grant(s), {summary.api_tokens} API token(s) (as hashes), "
            "encrypted with your passphrase"
        )
        return 0
    finally:
        vault.dispose()


def run_import(args: argparse.Namespace) -> int:
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    settings = settings_from_env()
    passphrase = read_secret(args.stdin, "backup passphrase", from_stdin=args.passphrase_stdin)
    try:
        payload = open_backup(data, passphrase)  # a wrong passphrase fails before any change
    except BackupError as exc:
        raise CliError(str(exc)) from None
    vault = open_vault_or_fail(settings)
    try:
        try:
            with vault.session() as session:
                summary = restore(session, vault.keyring, payload)
        except BackupError as exc:
            raise CliError(str(exc)) from None
        print(
            f"imported {summary.accounts} account(s), {summary.keys} key(s), "
            f"{summary.grants} grant(s) and {summary.api_tokens} API token(s) from {args.file}, "
            "re-encrypted under this vault's master key"
        )
        return 0
    finally:
        vault.dispose()
