"""The token cache: one owner-only JSON file under the user's config folder.

Entries are keyed by vault, app and the scope asked for, so a script asks the person once
and reuses the answer until the token expires or is revoked. The file lives at
``$XDG_CONFIG_HOME/okap/tokens.json`` (default ``~/.config/okap/tokens.json``) with mode 0600
inside a 0700 folder, like other CLI credential stores. ``OKAP_CONFIG_DIR`` moves the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from okap_client.request import covers, scope_of
from okap_client.token import OkapToken

CACHE_FILE = "tokens.json"


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("OKAP_CONFIG_DIR"):
        return Path(env["OKAP_CONFIG_DIR"])
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "okap"


def cache_key(vault_url: str, app: str, details: Sequence[Mapping[str, Any]]) -> str:
    material = {"vault": vault_url.rstrip("/"), "app": app, "scope": scope_of(details)}
    encoded = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    id: str
    vault_url: str
    app: str
    requested: list[dict[str, Any]]
    token: OkapToken
    stored_at: str

    @property
    def short_id(self) -> str:
        return self.id[:10]


class TokenCache:
    """Read and write cached tokens; every write replaces the file atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def default(cls, environ: Mapping[str, str] | None = None) -> TokenCache:
        return cls(config_dir(environ) / CACHE_FILE)

    # -- reading -------------------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return {}
        entries = data.get("entries") if isinstance(data, dict) else None
        return entries if isinstance(entries, dict) else {}

    def entries(self) -> list[CacheEntry]:
        found = []
        for key, raw in self._read().items():
            try:
                token = OkapToken.from_dict(raw["token"])
                found.append(
                    CacheEntry(
                        id=key,
                        vault_url=str(raw["vault_url"]),
                        app=str(raw.get("app", "")),
                        requested=list(raw.get("requested") or []),
                        token=token,
                        stored_at=str(raw.get("stored_at", "")),
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue
        return found

    def find(
        self,
        vault_url: str,
        app: str,
        details: Sequence[Mapping[str, Any]],
        now: datetime | None = None,
    ) -> OkapToken | None:
        """A still-valid cached token for this vault and app that answers the request.

        The entry stored for exactly this request wins even if the person narrowed it: that
        narrowing was their answer. Otherwise any token whose grant covers the request does.
        """
        moment = now or datetime.now(UTC)
        key = cache_key(vault_url, app, details)
        candidates = [e for e in self.entries() if e.token.is_valid(moment)]
        for entry in candidates:
            if entry.id == key:
                return entry.token
        for entry in candidates:
            same = entry.vault_url.rstrip("/") == vault_url.rstrip("/") and entry.app == app
            if same and covers(entry.token.authorization_details, details):
                return entry.token
        return None

    # -- writing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write under an advisory lock where the OS has one."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            try:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - Windows
                pass
            entries = self._read()
            yield entries
            self._write(entries)
        finally:
            os.close(fd)

    def _write(self, entries: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        payload = json.dumps({"version": 1, "entries": entries}, indent=2, sort_keys=True)
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            os.write(fd, payload.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def put(
        self, vault_url: str, app: str, details: Sequence[Mapping[str, Any]], token: OkapToken
    ) -> str:
        key = cache_key(vault_url, app, details)
        with self._locked() as entries:
            entries[key] = {
                "vault_url": vault_url.rstrip("/"),
                "app": app,
                "requested": scope_of(details),
                "token": token.to_dict(),
                "stored_at": datetime.now(UTC).isoformat(),
            }
            now = datetime.now(UTC)
            for stale in [k for k, e in entries.items() if _expired(e, now)]:
                del entries[stale]
        return key

    def forget(self, token_key: str) -> int:
        """Drop every entry holding this token; returns how many were dropped."""
        if not self.path.exists():
            return 0
        with self._locked() as entries:
            doomed = [k for k, e in entries.items() if e.get("token", {}).get("key") == token_key]
            for key in doomed:
                del entries[key]
        return len(doomed)


def _expired(raw: Mapping[str, Any], now: datetime) -> bool:
    try:
        return not OkapToken.from_dict(raw["token"]).is_valid(now, margin=0)
    except (KeyError, TypeError, ValueError):
        return True
