"""Authorization server metadata (RFC 8414), validated with Authlib's model."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from okap_server.authorization.token_exchange import TOKEN_EXCHANGE_GRANT_TYPE
from okap_server.catalog import ProviderCatalog
from okap_server.settings import Settings

OKAP_VERSIONS = ["1.0"]


def server_metadata(settings: Settings, catalog: ProviderCatalog) -> dict[str, Any]:
    issuer = settings.effective_public_url
    data: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "pushed_authorization_request_endpoint": f"{issuer}/oauth/par",
        "device_authorization_endpoint": f"{issuer}/oauth/device_authorization",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "urn:ietf:params:oauth:grant-type:device_code",
            TOKEN_EXCHANGE_GRANT_TYPE,
        ],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint_auth_methods_supported": ["bearer"],
        "authorization_details_types_supported": ["ai_model_access"],
        "authorization_response_iss_parameter_supported": True,
        "require_pushed_authorization_requests": False,
        "scopes_supported": [],
        "service_documentation": f"{issuer}/",
        "okap_versions_supported": OKAP_VERSIONS,
        "okap_authorize_endpoint": f"{issuer}/okap/authorize",
        "okap_usage_endpoint": f"{issuer}/okap/usage",
        "okap_proxy_base": f"{issuer}/v1",
        "okap_providers_supported": catalog.ids(),
    }
    AuthorizationServerMetadata(data).validate()
    return data
