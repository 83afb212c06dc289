"""The heap built at start-up, kept out of the cyclic garbage collector's way.

What the app builds before it serves (modules, the price book, the catalog, the routes,
the templates) lives as long as the process, yet CPython's collector walks all of it at
every full collection, and requests bring those on steadily: their outcomes wait for the
audit flush long enough to be promoted to the oldest generation. The more the start-up
heap grew (webhooks, telemetry, the price book: about 150,000 objects at 78251b4, 210,000
now), the more CPU each request paid for walking it: about 60 µs per request at 32
concurrent requests (bench/notes/2026-12-03-regression.md). ``gc.freeze()`` moves what
exists once start-up is done to the permanent generation, which collections skip; it is
still freed by reference counting like any object. ``gc.unfreeze()`` at shutdown gives it
back to the collector, so a process that starts and stops apps (tests, tools) keeps no
garbage for good.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def frozen_heap() -> Iterator[None]:
    """While serving: the objects of start-up frozen (start-up's garbage collected first,
    so none of it is kept)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
