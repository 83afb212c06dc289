"""The proxy: apps call ``/v1/{provider}/...`` with their provider's own SDK and an okap token.

One request, in order (see SPEC.md "The proxy"):

- ``web/proxy_routes.py`` turns the ASGI request into a plain ``messages.ProxyRequest``;
- ``service.ProxyService`` finds the provider row (``okap_server/catalog.py``) and its adapter
  (``providers/openai.py``, ``anthropic.py``, ``google.py``), reads the token where that
  family's SDKs send it, and looks the grant up in the in-process cache (``grant_cache.py``,
  holding ``okap_server.grants.view`` views);
- ``forwarding.plan_forward`` checks the path (``paths.py``), the body (read as I-JSON,
  ``ijson.py``), the endpoint's capability and every model it names, bounds the request and
  caps its output (``worst_case.py``), prices the worst case (``okap_server.prices``), admits
  the request in one transaction (rate windows and spend hold, ``accounting/``) and builds the
  upstream request with the real key (``headers.py``);
- ``upstream.UpstreamPool`` sends it, with retries before the first byte;
- the answer comes back whole or through ``relay.Relay`` (streams), usage is read on the way,
  and a ``recorder.Outcome`` goes to the batched writer (``recorder.py``) that settles the
  spend hold to the real cost and writes the audit row.

Every refusal is one ``errors.ProxyError`` subclass, rendered in the provider's own shape.
"""
