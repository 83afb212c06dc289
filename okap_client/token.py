"""``OkapToken``: what an app gets back, ready to hand to a provider SDK."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from okap_client.env import env_for
from okap_client.errors import VaultUnreachable
from okap_client.request import canonical_provider

if TYPE_CHECKING:
    from okap_client.usage import Usage


class TokenOwner(Protocol):
    """The client a token came from, which knows how to reach its vault."""

    def usage(self, token: OkapToken) -> Usage: ...

    def revoke(self, token: OkapToken) -> None: ...


class AsyncTokenOwner(Protocol):
    """An ``AsyncOkapClient``: what ``await token.ausage()`` and ``arevoke()`` go through."""

    async def usage(self, token: OkapToken) -> Usage: ...

    async def revoke(self, token: OkapToken) -> None: ...


def parse_instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(repr=False)
class OkapToken:
    """An ``okap_`` token and the access it carries, as the person granted it.

    ``authorization_details`` may be narrower than what was asked for: the person decides.
    The first entry's provider is the token's main ``provider``/``base_url``.
    """

    key: str
    vault_url: str
    authorization_details: list[dict[str, Any]]
    expires_at: datetime | None = None
    token_type: str = "Bearer"
    _owner: TokenOwner | None = field(default=None, compare=False)
    _async_owner: AsyncTokenOwner | None = field(default=None, compare=False)

    @classmethod
    def from_token_response(
        cls, body: Mapping[str, Any], vault_url: str, now: datetime
    ) -> OkapToken:
        """Read an RFC 6749 §5.1 token response carrying RFC 9396 authorization_details."""
        key = body.get("access_token")
        details = body.get("authorization_details")
        if not isinstance(key, str) or not key:
            raise VaultUnreachable("the vault's token response has no access_token")
        if not isinstance(details, list) or not details:
            details = []
        expires_at: datetime | None = None
        expires_in = body.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            expires_at = now + timedelta(seconds=float(expires_in))
        else:
            instants = [parse_instant(d.get("expires")) for d in details]
            known = [i for i in instants if i is not None]
            # SPEC "Tokens": a token lives until the latest expiry of its entries.
            expires_at = max(known) if known else parse_instant(body.get("expires_at"))
        return cls(
            key=key,
            vault_url=vault_url,
            authorization_details=[dict(d) for d in details if isinstance(d, Mapping)],
            expires_at=expires_at,
            token_type=str(body.get("token_type") or "Bearer"),
        )

    def bind(
        self, owner: TokenOwner | None, async_owner: AsyncTokenOwner | None = None
    ) -> OkapToken:
        """Tie the token to the client it came from, so ``usage()``/``revoke()`` (and their
        async twins) use that client's vault, cache and timeout."""
        self._owner = owner
        self._async_owner = async_owner
        return self

    # -- the reference SDK's names -------------------------------------------------------
    @property
    def token(self) -> str:
        """Alias of ``key``: the field name of the reference SDK (``okap`` 0.1.x)."""
        return self.key

    @property
    def _main(self) -> dict[str, Any]:
        return self.authorization_details[0] if self.authorization_details else {}

    @property
    def provider(self) -> str:
        return str(self._main.get("provider", ""))

    @property
    def providers(self) -> list[str]:
        return [str(d.get("provider", "")) for d in self.authorization_details]

    @property
    def base_url(self) -> str:
        return self.base_url_for(self.provider) if self.provider else ""

    @property
    def models(self) -> list[str]:
        return list(self._main.get("models") or [])

    @property
    def capabilities(self) -> list[str]:
        return list(self._main.get("capabilities") or [])

    @property
    def limits(self) -> dict[str, Any]:
        return dict(self._main.get("limits") or {})

    def detail_for(self, provider: str) -> dict[str, Any]:
        wanted = canonical_provider(provider)
        for entry in self.authorization_details:
            if canonical_provider(str(entry.get("provider", ""))) == wanted:
                return entry
        granted = ", ".join(self.providers) or "none"
        raise KeyError(f"this token grants no access to {provider!r} (granted: {granted})")

    def base_url_for(self, provider: str) -> str:
        """The proxy base URL to give the provider's own SDK for ``provider``."""
        entry = self.detail_for(provider)
        url = entry.get("base_url")
        if isinstance(url, str) and url:
            return url
        return f"{self.vault_url}/v1/{entry.get('provider', provider)}"

    def is_valid(self, now: datetime | None = None, margin: float = 60.0) -> bool:
        """Not expired, with ``margin`` seconds to spare (the vault may still have revoked it)."""
        if self.expires_at is None:
            return True
        moment = now or datetime.now(UTC)
        return self.expires_at - timedelta(seconds=margin) > moment

    def env(self) -> dict[str, str]:
        """The variables existing tools read (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ...)."""
        variables: dict[str, str] = {}
        for entry in self.authorization_details:
            provider = str(entry.get("provider", ""))
            variables.update(env_for(provider, self.key, self.base_url_for(provider)))
        return variables

    # -- talking to the vault about this token ---------------------------------------------
    def usage(self) -> Usage:
        """Spend and requests used and left, from the vault's ``/okap/usage``."""
        if self._owner is not None:
            return self._owner.usage(self)
        from okap_client.client import OkapClient

        with OkapClient(self.vault_url) as client:
            return client.usage(self)

    def revoke(self) -> None:
        """Give the token back (RFC 7009) and forget any cached copy."""
        if self._owner is not None:
            self._owner.revoke(self)
            return
        from okap_client.client import OkapClient

        with OkapClient(self.vault_url) as client:
            client.revoke(self)

    async def ausage(self) -> Usage:
        """``usage()`` for async code: through the ``AsyncOkapClient`` the token came from,
        else the sync call in a worker thread (the event loop is not blocked either way)."""
        if self._async_owner is not None:
            return await self._async_owner.usage(self)
        return await anyio.to_thread.run_sync(self.usage)

    async def arevoke(self) -> None:
        """``revoke()`` for async code; forgets the cached copy like ``revoke()``."""
        if self._async_owner is not None:
            await self._async_owner.revoke(self)
            return
        await anyio.to_thread.run_sync(self.revoke)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "vault_url": self.vault_url,
            "authorization_details": self.authorization_details,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "token_type": self.token_type,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OkapToken:
        return cls(
            key=str(data["key"]),
            vault_url=str(data["vault_url"]),
            authorization_details=list(data.get("authorization_details") or []),
            expires_at=parse_instant(data.get("expires_at")),
            token_type=str(data.get("token_type") or "Bearer"),
        )

    def __repr__(self) -> str:
        # Never show the key itself: reprs end up in logs and tracebacks.
        providers = ",".join(self.providers)
        return f"OkapToken(providers={providers!r}, expires_at={self.expires_at!r}, key=<hidden>)"

    __str__ = __repr__
