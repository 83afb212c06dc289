"""Which database errors mean "the database is away" (503, retry later) and which are bugs
(500): a constraint violation must never be dressed up as a temporary outage."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from okap_server.web.unavailable import is_connection_loss


def test_lost_connections_and_pool_timeouts_are_unavailability() -> None:
    assert is_connection_loss(OperationalError("SELECT 1", {}, Exception("server closed")))
    assert is_connection_loss(PoolTimeout("QueuePool limit of size 10 overflow 20 reached"))
    invalidated = ProgrammingError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    assert is_connection_loss(invalidated)


def test_constraint_and_statement_errors_are_not() -> None:
    assert not is_connection_loss(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_connection_loss(ProgrammingError("SELEC 1", {}, Exception("syntax error")))
