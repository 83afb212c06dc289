"""``OkapToken``: what an app gets back, ready to hand to a provider SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, Unpack

import anyio
import anyio.from_thread

from okap_client.env import env_for
from okap_client.errors import VaultUnreachable
from okap_client.request import canonical_provider

if TYPE_CHECKING:
    from okap_client.delegation import DelegateOptions
    from okap_client.usage import Usage

T = TypeVar("T")


class TokenOwner(Protocol):
    """The client a token came from, which knows how to reach its vault."""

    def usage(self, token: OkapToken) -> Usage: ...

    def revoke(self, token: OkapToken) -> None: ...

    def delegate(self, token: OkapToken, **options: Unpack[DelegateOptions]) -> OkapToken: ...


class AsyncTokenOwner(Protocol):
    """An ``AsyncOkapClient``: what ``await token.ausage()`` and ``arevoke()`` go through."""

    async def usage(self, token: OkapToken) -> Usage: ...

    async def revoke(self, token: OkapToken) -> None: ...

    async def delegate(self, token: OkapToken, **options: Unpack[DelegateOptions]) -> OkapToken: ...


class TokenNotBound(RuntimeError):
    """A token not returned by a client (rebuilt with ``from_dict``, say) has no client to
    talk to its vault through: pass it to ``OkapClient(vault_url).usage(token)`` instead."""


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
    # A token is bound to the client it came from (``bind``), sync or async, and talks to
    # its vault only through it: its transport, cache and timeout.
    def _sync_owner(self) -> TokenOwner:
        if self._owner is None:
            raise TokenNotBound(
                "this token did not come from a client: use OkapClient(vault_url) to reach "
                "its vault"
            )
        return self._owner

    def _blocking(self, call: Callable[[AsyncTokenOwner], Awaitable[T]]) -> T:
        """A sync call on a token of ``AsyncOkapClient``: through that client, on its event
        loop from one of its worker threads (``anyio.to_thread``), else in a loop of its
        own. Never from async code itself, where it would block the loop."""
        owner = self._async_owner
        assert owner is not None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "this token came from AsyncOkapClient: in async code, await its a-method "
                "(ausage, arevoke, adelegate)"
            )
        started = False

        async def run() -> T:
            nonlocal started
            started = True
            return await call(owner)

        try:
            return anyio.from_thread.run(run)
        except RuntimeError:
            if started:
                raise
        return anyio.run(run)

    def usage(self) -> Usage:
        """Spend and requests used and left, from the vault's ``/okap/usage``."""
        if self._owner is None and self._async_owner is not None:
            return self._blocking(lambda owner: owner.usage(self))
        return self._sync_owner().usage(self)

    def revoke(self) -> None:
        """Give the token back (RFC 7009) and forget any cached copy."""
        if self._owner is None and self._async_owner is not None:
            self._blocking(lambda owner: owner.revoke(self))
            return
        self._sync_owner().revoke(self)

    def delegate(self, **options: Unpack[DelegateOptions]) -> OkapToken:
        """A narrower child token (RFC 8693 token exchange) for a sub-agent, a job or a
        user of the app: ``models``, ``capabilities``, ``limits`` (only those named; the
        rest are this token's), ``expires_in`` seconds, ``provider`` (one of this token's;
        default all) and ``client_name``. Its spend counts against this token's limits
        too, and revoking this token revokes it. Raises ``InvalidRequest`` if it would be
        wider, ``DelegationRefused`` if this token may not be delegated."""
        if self._owner is None and self._async_owner is not None:
            return self._blocking(lambda owner: owner.delegate(self, **options))
        return self._sync_owner().delegate(self, **options)

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

    async def adelegate(self, **options: Unpack[DelegateOptions]) -> OkapToken:
        """``delegate()`` for async code."""
        if self._async_owner is not None:
            return await self._async_owner.delegate(self, **options)
        return await anyio.to_thread.run_sync(lambda: self.delegate(**options))

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
