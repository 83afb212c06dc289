"""``okap-server`` under a memory probe, for the soak's ``--trace`` (debugging only).

Run as ``python -m bench.memtrace DIR serve --port N``: it runs ``okap_server.cli`` with the
remaining arguments, and a daemon thread appends one JSON line to ``DIR/mem.jsonl`` every
few seconds: RSS, what tracemalloc traces (Python objects), what SQLite has allocated
(``sqlite3_memory_used``, its page caches and prepared statements, outside Python's
allocator) and glibc's heap figures (``mallinfo2``: in use versus held free in arenas).
The first ``SIGUSR1`` starts tracemalloc (so start-up and warm-up are not traced, and
run at full speed); each later one writes ``DIR/snapshot-<n>.txt``: the blocks allocated
since tracing started that are still alive, by line and by traceback, and the growth since
the previous snapshot. ``SIGUSR2`` writes ``DIR/statements.txt``: the SQL each SQLite
connection keeps prepared.

tracemalloc slows the server down several times; the figures it gives are for finding a
cause, not for the soak's verdict. Nothing here is imported by ``okap_server``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import json
import linecache
import os
import signal
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from types import FrameType
from typing import Any

FRAMES = 8
EVERY_SECONDS = 5.0


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _libs() -> tuple[Any, Any]:
    """libsqlite3 as the ``_sqlite3`` module loaded it, and libc (None where absent)."""
    import sqlite3  # noqa: F401  (loads libsqlite3 into the process first)

    sqlite = libc = None
    name = ctypes.util.find_library("sqlite3")
    if name:
        sqlite = ctypes.CDLL(name)
        sqlite.sqlite3_memory_used.restype = ctypes.c_int64
        sqlite.sqlite3_memory_highwater.restype = ctypes.c_int64
        sqlite.sqlite3_memory_highwater.argtypes = [ctypes.c_int]
        sqlite.sqlite3_db_mutex.restype = ctypes.c_void_p
        sqlite.sqlite3_db_mutex.argtypes = [ctypes.c_void_p]
        sqlite.sqlite3_mutex_enter.argtypes = [ctypes.c_void_p]
        sqlite.sqlite3_mutex_leave.argtypes = [ctypes.c_void_p]
        sqlite.sqlite3_next_stmt.restype = ctypes.c_void_p
        sqlite.sqlite3_next_stmt.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        sqlite.sqlite3_sql.restype = ctypes.c_char_p
        sqlite.sqlite3_sql.argtypes = [ctypes.c_void_p]
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    if not hasattr(libc, "mallinfo2"):
        libc = None
    else:
        libc.mallinfo2.restype = _MallInfo2
    return sqlite, libc


HEAP_MAX = 64 * 2**20  # a glibc thread arena's heap is a mapping aligned to this


def rss_by_kind() -> dict[str, float]:
    """Resident MB by kind of mapping: the main malloc heap (brk), glibc's thread arenas,
    other anonymous memory (pymalloc's arenas, large blocks, stacks) and files."""
    kinds = dict.fromkeys(("brk_heap_mb", "thread_arenas_mb", "other_anon_mb", "files_mb"), 0.0)
    kind = "other_anon_mb"
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split(maxsplit=6)
        if "-" in head[0] and len(head) >= 5 and ":" in head[3]:
            start = int(head[0].split("-")[0], 16)
            name = head[5] if len(head) > 5 else ""
            if name == "[heap]":
                kind = "brk_heap_mb"
            elif name.startswith("/"):
                kind = "files_mb"
            elif not name and start % HEAP_MAX == 0:
                kind = "thread_arenas_mb"
            else:
                kind = "other_anon_mb"
        elif line.startswith("Rss:"):
            kinds[kind] += int(line.split()[1]) / 1024
    return {k: round(v, 2) for k, v in kinds.items()}


def _handle(conn: Any) -> ctypes.c_void_p:
    """The ``sqlite3 *`` of a ``sqlite3.Connection``: CPython's first field after the object
    header (NULL once closed)."""
    return ctypes.c_void_p.from_address(id(conn) + ctypes.sizeof(ctypes.c_ssize_t) * 2)


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Probe:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.sqlite, self.libc = _libs()
        self.started = time.monotonic()
        self.frames = int(os.environ.get("OKAP_MEMTRACE_FRAMES", FRAMES))
        self.previous: tracemalloc.Snapshot | None = None
        self.snapshots = 0
        self.connects = itertools.count()
        self.closes = itertools.count()
        self.counted = {"db_connects": 0, "db_closes": 0}
        # SQLite connections of the pools, by id. The pool's close event comes before the
        # close, and waits for this lock: a connection read under it is not freed meanwhile.
        self.open: dict[int, Any] = {}
        self.open_lock = threading.Lock()

    def sqlite_parts(self) -> dict[str, float]:
        """What the open SQLite connections hold: page caches, prepared statements, schemas
        (``sqlite3_db_status``; the ``sqlite3 *`` is the first field of CPython's object)."""
        if self.sqlite is None:
            return {}
        totals = dict.fromkeys(("cache", "stmt", "schema"), 0)
        current, high = ctypes.c_int(), ctypes.c_int()
        with self.open_lock:
            for conn in self.open.values():
                handle = _handle(conn)
                if not handle.value:
                    continue
                for op, name in ((1, "cache"), (2, "schema"), (3, "stmt")):
                    self.sqlite.sqlite3_db_status(
                        handle, op, ctypes.byref(current), ctypes.byref(high), 0
                    )
                    totals[name] += current.value
        parts = {f"sqlite_{k}_mb": round(v / 2**20, 2) for k, v in totals.items()}
        return {"sqlite_conns": len(self.open), **parts}

    def statements(self, _signum: int, _frame: FrameType | None) -> None:
        """Write ``DIR/statements.txt``: the statements each SQLite connection keeps prepared
        (Python's per-connection statement cache), counted by their first 70 characters."""
        if self.sqlite is None:
            return
        counts: dict[str, list[int]] = {}
        with self.open_lock:
            for conn in self.open.values():
                handle = _handle(conn)
                if not handle.value:
                    continue
                # Under the connection's mutex, no other thread finalizes a statement.
                mutex = self.sqlite.sqlite3_db_mutex(handle)
                self.sqlite.sqlite3_mutex_enter(mutex)
                try:
                    stmt = self.sqlite.sqlite3_next_stmt(handle, None)
                    while stmt:
                        sql = (self.sqlite.sqlite3_sql(stmt) or b"").decode(errors="replace")
                        entry = counts.setdefault(" ".join(sql.split())[:70], [0, 0])
                        entry[0] += 1
                        entry[1] = max(entry[1], sql.count("?"))
                        stmt = self.sqlite.sqlite3_next_stmt(handle, stmt)
                finally:
                    self.sqlite.sqlite3_mutex_leave(mutex)
        rows = sorted(counts.items(), key=lambda kv: -kv[1][0])
        text = "\n".join(f"{n:6d} prepared, up to {q:5d} params: {sql}" for sql, (n, q) in rows)
        (self.out / "statements.txt").write_text(text + "\n")

    def watch_pools(self) -> None:
        """Count database connections opened and closed, in every pool of the process."""
        from sqlalchemy import event
        from sqlalchemy.pool import Pool

        def opened(dbapi_connection: Any, *_: Any) -> None:
            self.counted["db_connects"] = next(self.connects) + 1
            if type(dbapi_connection).__module__ == "sqlite3":
                with self.open_lock:
                    self.open[id(dbapi_connection)] = dbapi_connection

        def closed(dbapi_connection: Any, *_: Any) -> None:
            self.counted["db_closes"] = next(self.closes) + 1
            with self.open_lock:
                self.open.pop(id(dbapi_connection), None)

        event.listen(Pool, "connect", opened)
        event.listen(Pool, "close", closed)
        event.listen(Pool, "close_detached", closed)

    def line(self) -> dict[str, Any]:
        traced, _peak = tracemalloc.get_traced_memory()
        row: dict[str, Any] = {
            "t": round(time.monotonic() - self.started, 1),
            "rss_mb": round(_rss_kb() / 1024, 2),
            "traced_mb": round(traced / 2**20, 2),
            "threads": threading.active_count(),
            **rss_by_kind(),
            **self.counted,
        }
        if self.sqlite is not None:
            row["sqlite_mb"] = round(self.sqlite.sqlite3_memory_used() / 2**20, 2)
            row.update(self.sqlite_parts())
        if self.libc is not None:
            info = self.libc.mallinfo2()
            row["heap_arena_mb"] = round(info.arena / 2**20, 2)
            row["heap_used_mb"] = round(info.uordblks / 2**20, 2)
            row["heap_free_mb"] = round(info.fordblks / 2**20, 2)
            row["heap_mmap_mb"] = round(info.hblkhd / 2**20, 2)
        return row

    def loop(self) -> None:
        with (self.out / "mem.jsonl").open("a") as out:
            while True:
                out.write(json.dumps(self.line()) + "\n")
                out.flush()
                time.sleep(EVERY_SECONDS)

    def snapshot(self, _signum: int, _frame: FrameType | None) -> None:
        if not tracemalloc.is_tracing():  # the first signal starts tracing (after warm-up)
            tracemalloc.start(self.frames)
            return
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        self.snapshots += 1
        lines = [json.dumps(self.line())]
        for title, key in (("by line", "lineno"), ("by traceback", "traceback")):
            lines.append(f"== alive, allocated since tracing started, {title} ==")
            for stat in snap.statistics(key)[:25]:
                lines.append(f"{stat.size / 1024:10.1f} KiB {stat.count:8d} blocks")
                frames = stat.traceback.format() if key == "traceback" else [str(stat.traceback)]
                lines.extend("    " + f for f in frames)
        if self.previous is not None:
            lines.append("== growth since the previous snapshot, by line ==")
            for diff in snap.compare_to(self.previous, "lineno")[:25]:
                lines.append(
                    f"{diff.size_diff / 1024:+10.1f} KiB {diff.count_diff:+8d} blocks  "
                    f"{diff.traceback}"
                )
        self.previous = snap
        (self.out / f"snapshot-{self.snapshots}.txt").write_text("\n".join(lines) + "\n")
        linecache.clearcache()  # format() read the source lines: not the server's memory


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    probe = Probe(out)
    probe.watch_pools()
    signal.signal(signal.SIGUSR1, probe.snapshot)
    signal.signal(signal.SIGUSR2, probe.statements)
    threading.Thread(target=probe.loop, name="memtrace", daemon=True).start()
    from okap_server.cli import main as cli_main

    return cli_main(sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
