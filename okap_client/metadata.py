"""The vault's authorization server metadata (RFC 8414), read before any flow starts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from okap_client.errors import VaultUnreachable

WELL_KNOWN_PATH = "/.well-known/oauth-authorization-server"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass(frozen=True)
class ServerMetadata:
    issuer: str
    token_endpoint: str
    authorization_endpoint: str | None = None
    pushed_authorization_request_endpoint: str | None = None
    device_authorization_endpoint: str | None = None
    revocation_endpoint: str | None = None
    okap_usage_endpoint: str | None = None
    okap_authorize_endpoint: str | None = None
    code_challenge_methods_supported: tuple[str, ...] = ()
    grant_types_supported: tuple[str, ...] = ()
    providers_supported: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_body(cls, body: Any, vault_url: str) -> ServerMetadata:
        if not isinstance(body, Mapping) or not isinstance(body.get("token_endpoint"), str):
            raise VaultUnreachable(f"{vault_url} does not publish OAuth server metadata")

        def url(name: str, default_path: str | None = None) -> str | None:
            value = body.get(name)
            if isinstance(value, str) and value:
                return value
            return f"{vault_url}{default_path}" if default_path else None

        def names(name: str) -> tuple[str, ...]:
            value = body.get(name)
            return tuple(str(v) for v in value) if isinstance(value, list) else ()

        return cls(
            issuer=str(body.get("issuer") or vault_url),
            token_endpoint=str(body["token_endpoint"]),
            authorization_endpoint=url("authorization_endpoint"),
            pushed_authorization_request_endpoint=url("pushed_authorization_request_endpoint"),
            device_authorization_endpoint=url("device_authorization_endpoint"),
            revocation_endpoint=url("revocation_endpoint", "/oauth/revoke"),
            okap_usage_endpoint=url("okap_usage_endpoint", "/okap/usage"),
            okap_authorize_endpoint=url("okap_authorize_endpoint"),
            code_challenge_methods_supported=names("code_challenge_methods_supported"),
            grant_types_supported=names("grant_types_supported"),
            providers_supported=names("okap_providers_supported"),
            raw=dict(body),
        )

    @classmethod
    def okap_only(cls, vault_url: str) -> ServerMetadata:
        """What to assume of a vault without RFC 8414 metadata: the OKAP v1.0 binding."""
        return cls(
            issuer=vault_url,
            token_endpoint="",
            revocation_endpoint=f"{vault_url}/oauth/revoke",
            okap_usage_endpoint=f"{vault_url}/okap/usage",
            okap_authorize_endpoint=f"{vault_url}/okap/authorize",
        )

    @property
    def supports_browser(self) -> bool:
        return bool(self.authorization_endpoint) and (
            not self.code_challenge_methods_supported
            or "S256" in self.code_challenge_methods_supported
        )

    @property
    def supports_device(self) -> bool:
        return bool(self.device_authorization_endpoint) and (
            not self.grant_types_supported or DEVICE_GRANT in self.grant_types_supported
        )
