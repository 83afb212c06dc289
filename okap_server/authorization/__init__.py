"""okap server: authorization — the protocol core, free of the web framework.

One module per concept: ``details`` (the ``ai_model_access`` type, RFC 9396), ``narrowing``,
``errors`` (one class per error code, rendered by ``errors.render``), ``clients`` (public
clients and redirect URIs), ``pkce`` (RFC 7636), ``authorize`` and ``par`` (RFC 6749 §4.1,
RFC 9126), ``requests`` (pending requests: claim, decide once), ``codes`` (single-use
codes, atomic redemption), ``device`` (RFC 8628), ``grants`` (grant + token issue),
``revocation`` (RFC 7009), ``introspection`` (RFC 7662), ``bearer``, ``metadata``
(RFC 8414), ``okap_binding`` (OKAP v1.0) and ``reference`` (the ``okap`` 0.1 SDK).
The FastAPI adapters are in ``okap_server.web``.
"""
