"""What every ``okap-server`` command shares: settings, opening the vault, clear failures."""

from __future__ import annotations

from okap_server.context import Vault, open_vault
from okap_server.settings import Settings, load_settings
from okap_server.vault.masterkey import MasterKeyError


class CliError(Exception):
    """A command failed; the message is one clear line and holds no secret."""


def settings_from_env() -> Settings:
    return load_settings()


def open_vault_or_fail(settings: Settings, *, create_key: bool = True) -> Vault:
    try:
        return open_vault(settings, create_key=create_key)
    except MasterKeyError as exc:
        raise CliError(str(exc)) from None
    except PermissionError as exc:
        raise CliError(f"cannot use {exc.filename}: permission denied") from None
