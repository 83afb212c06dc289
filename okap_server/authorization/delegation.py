"""An app's ``delegation`` parameter (RFC 8693 token exchange): whether the token it asks
for may be handed on. The tree itself is ``grants.tree``."""

from __future__ import annotations

from okap_server.authorization.errors import InvalidRequest

DELEGATION_CHOICES = {"allowed": True, "forbidden": False}


def delegation_asked(value: object) -> bool:
    """An app's ``delegation`` request parameter: ``allowed`` (the default) or
    ``forbidden``, when the app itself wants a token no one can delegate. The person
    decides on the consent page; an app's "forbidden" cannot be widened there."""
    if value is None or value == "":
        return True
    if not isinstance(value, str) or value not in DELEGATION_CHOICES:
        raise InvalidRequest("delegation: must be allowed or forbidden")
    return DELEGATION_CHOICES[value]
