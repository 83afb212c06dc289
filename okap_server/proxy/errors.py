"""One exception class per proxy error code, rendered in one place in the provider's own
error shape (see ``ProxyService.render_error``), so the app's SDK raises its usual class.

Messages are fixed text plus names the app itself sent (a model, a provider); they never
hold a key, a token or an upstream URL.
"""

from __future__ import annotations


class ProxyError(Exception):
    status: int = 500
    code: str = "proxy_error"
    default_message: str = "The vault could not serve this request."
    # Set on an upstream failure after the whole request was sent (no answer, or a late
    # one): the provider may have processed and billed it, so it is charged its worst case
    # and audited as ``outcome_unknown`` (SPEC.md, "Upstream trouble").
    outcome_unknown: bool = False

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        self.message = message or self.default_message
        self.headers = dict(headers or {})
        super().__init__(self.message)


class InvalidToken(ProxyError):
    status, code = 401, "invalid_token"
    default_message = "The okap token is missing, malformed or unknown."


class TokenRevoked(ProxyError):
    status, code = 401, "token_revoked"
    default_message = "This okap token has been revoked. Ask the vault's owner for access again."


class TokenExpired(ProxyError):
    status, code = 401, "token_expired"
    default_message = "This okap token has expired. Ask the vault's owner for access again."


class UnknownProvider(ProxyError):
    status, code = 404, "unknown_provider"
    default_message = "This vault knows no such provider."


class ProviderNotGranted(ProxyError):
    status, code = 403, "provider_not_granted"


class ModelNotAllowed(ProxyError):
    status, code = 403, "model_not_allowed"


class CapabilityNotGranted(ProxyError):
    status, code = 403, "capability_not_granted"


class EndpointNotAllowed(ProxyError):
    status, code = 403, "endpoint_not_allowed"


class ListingNotAllowed(ProxyError):
    status, code = 403, "listing_not_allowed"
    default_message = (
        "An okap grant cannot list the organisation's stored objects: the key is shared with "
        "other apps. Keep the ids of the objects this app created, and use those."
    )


class ObjectNotOwned(ProxyError):
    status, code = 403, "object_not_owned"


class KeyUnavailable(ProxyError):
    status, code = 403, "key_unavailable"
    default_message = "The vault holds no usable key for this provider any more."


class PriceUnknown(ProxyError):
    status, code = 403, "price_unknown"


class UnboundedCost(ProxyError):
    """Under a spend limit, an endpoint or a feature whose cost the vault cannot bound in
    advance (a batch, cache storage, hosted tools): holding less would break the limit."""

    status, code = 403, "unbounded_cost"


class TokensPerRequestExceeded(ProxyError):
    """More answers (``n``) than the grant's ``tokens_per_request`` leaves a token each."""

    status, code = 403, "tokens_per_request_exceeded"


class RateLimited(ProxyError):
    status, code = 429, "rate_limit_exceeded"


class BudgetExceeded(ProxyError):
    """Final: what was spent leaves no room for this request's worst case."""

    status, code = 429, "budget_exceeded"


class BudgetHeld(BudgetExceeded):
    """Retryable: spent plus this request's worst case fits; only the worst-case holds of
    requests in flight are in the way, and they settle within moments."""

    status, code = 429, "budget_held"


class InvalidPath(ProxyError):
    status, code = 400, "invalid_path"
    default_message = "The request path is not allowed."


class InvalidJson(ProxyError):
    status, code = 400, "invalid_json"
    default_message = "The request body is not valid JSON."


class InvalidMultipart(ProxyError):
    """A ``multipart/form-data`` body the vault cannot read exactly as the upstream would."""

    status, code = 400, "invalid_multipart"
    default_message = "The multipart/form-data body is malformed."


class AmbiguousBody(ProxyError):
    """Framing of the body that two readers could take two ways (two ``Content-Type``
    headers, a ``Content-Encoding``): the vault forwards only a body it read."""

    status, code = 400, "ambiguous_body"


class InvalidParameter(ProxyError):
    """A body member the vault cannot read one way: a count that is not an integer, or a
    name some upstream reader would take for one the vault reads (``MAX_TOKENS``)."""

    status, code = 400, "invalid_parameter"


class RequestTooLarge(ProxyError):
    status, code = 413, "request_too_large"


class RequestTimeout(ProxyError):
    """The body did not arrive by its deadline (RFC 9110 §15.5.9); the connection closes."""

    status, code = 408, "request_timeout"
    default_message = "The request body did not arrive in time."


class ClientGone(ProxyError):
    """The app went away before its body was complete: recorded, answered to no one."""

    status, code = 499, "client_disconnected"
    default_message = "The app closed the connection before sending its whole request."


class UpstreamUnavailable(ProxyError):
    status, code = 502, "upstream_unavailable"
    default_message = "The provider could not be reached."


class UpstreamInvalidResponse(ProxyError):
    status, code = 502, "upstream_invalid_response"
    default_message = "The provider's answer could not be read."


class UpstreamTimeout(ProxyError):
    status, code = 504, "upstream_timeout"
    default_message = "The provider did not answer in time."


class ProxyUnavailable(ProxyError):
    status, code = 503, "vault_unavailable"
    default_message = "The vault cannot reach its database right now."


class InternalError(ProxyError):
    """A fault of the vault itself: the app still gets its provider's error shape."""

    status, code = 500, "internal_error"
    default_message = "The vault failed while handling this request."
