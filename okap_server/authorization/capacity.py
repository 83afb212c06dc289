"""Room for undecided requests: caps per source, per client on a source, and in total.

Anyone may ask for access without credentials, so every front door could be used to fill
the database and the person's Pending list. A client id is self-asserted (an OKAP binding
client names itself in the body), so a cap per client id alone would let a stranger use up
a real app's room by naming it. The caps are therefore counted per *source* (the caller's
address; an IPv6 /64 counts as one, see ``web/rate_limit.py``), per client id *on that
source*, and for the whole vault. A request over a cap is refused before anything is stored,
with the error of its front door (``refusal``) and ``Retry-After`` set to when the oldest
counted request expires. Nothing already waiting is ever evicted.

Each cap is checked with one aggregate query before the insert, so concurrent requests
(or replicas) may overshoot a cap by the number in flight at that moment; the rate limits in
front of the doors keep that small.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, select
from sqlmodel import Session, col

from okap_server.authorization.errors import OAuthError, SlowDown, TemporarilyUnavailable
from okap_server.authorization.models import AuthorizationRequest
from okap_server.clock import utcnow
from okap_server.settings import Settings

# The error each front door answers when one caller asks too much (SPEC.md "Floods"):
# the authorization endpoint and PAR have RFC 6749 §4.1.2.1's ``temporarily_unavailable``
# (RFC 9126 §2.3 adds the 429 status); the device and OKAP doors are polling protocols whose
# clients already know ``slow_down`` (RFC 8628 §3.5) as "wait, then try again". The token
# exchange (RFC 8693, at the token endpoint) has no code of its own for it and uses the same
# ``temporarily_unavailable`` with 429.
CALLER_REFUSALS: dict[str, type[OAuthError]] = {
    "code": TemporarilyUnavailable,
    "device": SlowDown,
    "okap": SlowDown,
    "reference": SlowDown,
    "exchange": TemporarilyUnavailable,
}


def _admit_all(flow: str, client_id: str) -> None:
    return None


@dataclass(frozen=True)
class Caller:
    """Who sent a request, as the front door saw it: its ``source`` (an address, or an IPv6
    /64), and the web layer's rate check for a client id on that source, called with
    ``(flow, client_id)`` once the client id is parsed (it raises the door's refusal)."""

    source: str
    admit_client: Callable[[str, str], None] = _admit_all


def retry_after(seconds: float) -> int:
    """Whole seconds for ``Retry-After`` (RFC 9110 §10.2.3), at least 1."""
    return max(1, math.ceil(seconds))


def refusal(flow: str, description: str, wait: float, *, everyone: bool = False) -> OAuthError:
    """The error a front door answers when it is too busy: ``everyone`` (the whole vault is
    full) is 503 ``temporarily_unavailable``; one caller over its share is a 429 in its door's
    code. Both carry ``Retry-After``."""
    headers = {"Retry-After": str(retry_after(wait))}
    if everyone:
        return TemporarilyUnavailable(description, status_code=503, headers=headers)
    error = CALLER_REFUSALS.get(flow, TemporarilyUnavailable)
    return error(description, status_code=429, headers=headers)


def _wait_until(moment: datetime | None, now: datetime) -> float:
    return (moment - now).total_seconds() if moment is not None else 1.0


def check_room(
    session: Session, settings: Settings, *, flow: str, client_id: str, caller: Caller
) -> None:
    """Raise the door's refusal if this caller asks too often, or if a new undecided
    request would break a cap."""
    caller.admit_client(flow, client_id)
    source = caller.source
    now = utcnow()
    request = AuthorizationRequest
    expires = col(request.expires_at)
    same_source = col(request.source) == source
    same_client = and_(same_source, col(request.client_id) == client_id)
    total, from_source, from_client, first, first_of_source, first_of_client = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((same_source, 1), else_=0)), 0),
            func.coalesce(func.sum(case((same_client, 1), else_=0)), 0),
            func.min(expires),
            func.min(case((same_source, expires))),
            func.min(case((same_client, expires))),
        ).where(col(request.status) == "pending", expires > now)
    ).one()
    if from_client >= settings.pending_max_per_client:
        raise refusal(
            flow,
            f"this app already has {from_client} requests waiting for a person; "
            "wait for them to be decided or to expire",
            _wait_until(first_of_client, now),
        )
    if from_source >= settings.pending_max_per_source:
        raise refusal(
            flow,
            f"{from_source} requests from this address are waiting for a person; "
            "wait for them to be decided or to expire",
            _wait_until(first_of_source, now),
        )
    if total >= settings.pending_max_total:
        raise refusal(
            flow,
            "the vault has too many requests waiting for a person; try again later",
            _wait_until(first, now),
            everyone=True,
        )
