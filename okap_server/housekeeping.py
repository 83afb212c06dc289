"""Periodic tidying that must not wait for someone to open a page: expire undecided
requests, drop spent codes and ended browser sessions, and delete requests (with their
device codes, request URIs and poll handles) once nobody can use them any more
(``authorization/retention.py``). Safe on every replica at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy.exc import SQLAlchemyError

from okap_server.authorization.requests import tidy
from okap_server.authorization.retention import purge
from okap_server.background import in_background
from okap_server.context import Vault

log = logging.getLogger(__name__)


def tidy_once(vault: Vault) -> None:
    with vault.session() as session:
        tidy(session)
        purge(session, vault.settings)


async def _loop(vault: Vault, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(tidy_once, vault)
        except SQLAlchemyError as exc:  # the database is away: try again next round
            log.warning("housekeeping skipped: %s", type(exc).__name__)


@contextlib.asynccontextmanager
async def running(vault: Vault) -> AsyncIterator[None]:
    """Run the tidying loop for the lifetime of the app."""
    async with in_background(_loop(vault, vault.settings.housekeeping_seconds)):
        yield
