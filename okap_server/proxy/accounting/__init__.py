"""The proxy's accounting: rate windows, spend holds and ceilings, admission, settlement.

Kept apart from forwarding because every limit is only as true as this code. One concern
per module: the SQL text (``statements``), the rate limiter (``rate``), which rows a hold
takes and how a refusal names them (``holds``), spend holds (``budget``), counter deltas in
lock order (``deltas``), group admission (``admission``), its queue (``admission_queue``),
SQLite's lone path (``lone``) and settlement (``settlement``). The period keys and the
ceilings' settings and report belong to a grant: ``okap_server.grants.periods`` and
``okap_server.grants.ceilings``.
"""
