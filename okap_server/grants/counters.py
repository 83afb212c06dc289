"""What a grant has used: spend and rate counters, read by the proxy, usage and ceilings.

Money is stored in micro-dollars (1e-6 USD) as integers, so atomic SQL arithmetic is exact.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel


class SpendCounter(SQLModel, table=True):
    """Spent and reserved micro-dollars of one grant's provider entry, or of one ceiling,
    in one period.

    ``period`` is ``total``, ``day:YYYY-MM-DD``, ``week:YYYY-Www`` (ISO) or ``month:YYYY-MM``
    (UTC). A ceiling's row has ``grant_id`` ``account:<id>`` or ``key:<id>`` and provider
    ``*``: one table, so a grant's holds and its ceilings' are one statement
    (``accounting/budget.py``). That is why ``grant_id`` has no foreign key; a grant's rows
    are deleted with it by hand (``delete_counters``).
    """

    __tablename__ = "spend_counter"

    grant_id: str = Field(primary_key=True)
    provider: str = Field(primary_key=True, max_length=32)
    period: str = Field(primary_key=True, max_length=24)
    spent_micros: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    reserved_micros: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    requests: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class RateCounter(SQLModel, table=True):
    """Requests admitted for one grant's provider entry in one fixed window.

    ``window`` is ``minute:<minutes since the epoch>`` or ``day:YYYY-MM-DD`` (UTC).
    """

    __tablename__ = "rate_counter"

    grant_id: str = Field(foreign_key="grant.id", primary_key=True, ondelete="CASCADE")
    provider: str = Field(primary_key=True, max_length=32)
    window: str = Field(primary_key=True, max_length=32)
    count: int = 0
    # When the window is over; the sweeper deletes rows past it.
    expires_at: datetime = Field(index=True)
