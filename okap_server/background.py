"""One background task for the lifetime of the app (the tidying loop, the webhook
deliveries): started on entry, cancelled and awaited on exit, so shutdown never leaves a
task running or logs its cancellation as an error."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def in_background(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run ``work`` as a task while the block runs; cancel it, and wait for it, after."""
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
