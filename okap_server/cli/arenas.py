"""glibc's malloc arenas, capped for a long-running vault.

glibc gives the threads that allocate arenas of their own, up to eight per core. With the
vault's threads (the event loop, the admission thread, the database worker threads) the
memory glibc holds free in them kept rising while the memory in use did not: a SQLite
vault's RSS crept by 0.4 to 0.6 MB per 10,000 requests, not levelled off after 200,000
(``bench/README.md``, "Soak"). With two arenas the same soak stayed flat (+0.08 MB). An
operator's own ``MALLOC_ARENA_MAX`` wins; elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

ARENA_MAX = 2
_M_ARENA_MAX = -8  # from glibc's malloc.h


def cap_malloc_arenas(limit: int = ARENA_MAX) -> bool:
    """Cap this process's arenas (before its threads start) and its children's (by the
    environment, which glibc reads at start-up); False if left alone."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        applied = bool(ctypes.CDLL(None).mallopt(_M_ARENA_MAX, limit))  # the loaded libc's
    except (OSError, AttributeError):  # no C library with mallopt
        return False
    if applied:
        os.environ["MALLOC_ARENA_MAX"] = str(limit)
    return applied
