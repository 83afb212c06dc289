"""okap server: grants — what a person granted an app, owned in one place.

``models`` (the ``Grant`` row), ``tokens`` (the ``okap_`` token format and its hash),
``details`` (a grant's typed ``authorization_details`` entries), ``view`` (the proxy's
reading of a grant), ``counters``, ``periods``, ``usage`` and ``ceilings`` (what a grant
has used and what limits it), and ``lifecycle`` (revocation and the after-commit notice to
every replica). The authorization core issues grants and the proxy enforces them; both
import this package and never each other (the import-linter contracts in pyproject.toml).
"""
