"""Reading secrets (keys, passwords, passphrases) from stdin or a hidden prompt, never argv.

A value on the command line stays in shell history and is visible to every local user
through ``ps``; so the CLI refuses anything on argv that looks like a secret, without
echoing it back.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Sequence
from typing import TextIO

from okap_server.cli.common import CliError

# Prefixes of real provider keys and of okap's own tokens.
SECRET_PREFIXES = (
    "sk-",
    "sk_",
    "sk-ant-",
    "sk-proj-",
    "sk-or-",
    "AIza",
    "gsk_",
    "xai-",
    "pplx-",
    "fw_",
    "csk-",
    "okap_",
    "hf_",
    "r8_",
    "nvapi-",
    "tgp_v1_",
)
# Identifiers the vault itself prints (safe to take on argv).
_ID_PATTERN = re.compile(r"^(key|acc|grt|req|evt|log)_[0-9a-f]{32}$")
_SECRET_OPTION = re.compile(
    r"^--?(password|passwd|secret|key|api-key|apikey|token|passphrase|master-key)(=|$)"
)
_LONG_TOKEN = re.compile(r"^[A-Za-z0-9_\-+=]{32,}$")

ARGV_REFUSAL = (
    "refusing a secret on the command line (it would stay in shell history and be visible "
    "in `ps`); nothing was stored. Pipe it on stdin or answer the hidden prompt"
)


def looks_like_secret(arg: str) -> bool:
    """True for a provider key, an okap token, or a long random-looking token."""
    if _ID_PATTERN.match(arg):
        return False
    if _SECRET_OPTION.match(arg):
        return True
    if len(arg) >= 16 and arg.startswith(SECRET_PREFIXES):
        return True
    if not _LONG_TOKEN.match(arg):
        return False
    # Random keys (e.g. Mistral's 32 characters) mix cases and digits; labels and ids do not.
    mixed = any(c.isupper() for c in arg) and any(c.islower() for c in arg)
    return len(arg) >= 48 or (mixed and any(c.isdigit() for c in arg))


def refuse_secrets_in_argv(argv: Sequence[str]) -> None:
    """Raise before anything is parsed or stored if argv carries something secret-like."""
    if any(looks_like_secret(arg) for arg in argv):
        raise CliError(ARGV_REFUSAL)


def read_secret(
    stdin: TextIO,
    what: str,
    *,
    from_stdin: bool,
    confirm: bool = False,
) -> str:
    """One secret: the first line of stdin when told so or when stdin is not a terminal,
    else a hidden prompt (twice when ``confirm``)."""
    if from_stdin or not stdin.isatty():
        line = stdin.readline()
        value = line.rstrip("\r\n")
        if not value:
            raise CliError(f"no {what} on stdin; nothing was stored")
        return value
    label = what[:1].upper() + what[1:]
    try:
        value = getpass.getpass(f"{label}: ")
        if confirm and getpass.getpass(f"{label} (again): ") != value:
            raise CliError(f"the two {what}s differ; nothing was stored")
    except EOFError:
        raise CliError(f"no {what} given; nothing was stored") from None
    if not value:
        raise CliError(f"the {what} is empty; nothing was stored")
    return value
