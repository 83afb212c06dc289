"""The settlement journal: each finished request's settlement, on local disk before its
answer goes out, so a process killed before its next audit flush loses no real cost.

The recorder writes settlements to the database in batches, a quarter of a second apart.
A process killed in between used to leave those requests to the sweeper, which charges
each its worst case (the outcome is unknown to it), however cheap the answer the app got.
Here every outcome the recorder is handed is also appended, as one record, to this
process's segment file under ``OKAP_HOME/journal`` (one ``write(2)`` of a few hundred
bytes with ``O_APPEND``, about 4 µs with its encoding; it survives the process, though not
the machine). A record is a length and a pickle of plain values (the fastest encoding
measured: a quarter of JSON's cost), read back with an unpickler that refuses every class,
so a record can only ever build strings, numbers, lists and tuples.
A flush that has written everything seals the segment and deletes it.

A process that starts replays the segments of processes that are gone: each process holds
an exclusive ``flock(2)`` on its own segments while it lives, which the kernel releases when
it dies, so a segment whose lock can be taken is an orphan. Replaying is safe even for
outcomes that were written already, because settlement is idempotent (``settlement.py``).
No prompt, answer, key or token is ever in the journal: only what the audit row holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import pickle
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from okap_server.clock import new_id
from okap_server.proxy.outcome import Outcome
from okap_server.proxy.providers.base import Usage

log = logging.getLogger("okap.proxy.journal")

SUFFIX = ".journal"
_LENGTH = struct.Struct("<I")


def encode(o: Outcome) -> bytes:
    """One outcome as a record: its fields, in a fixed order (see :func:`decode`)."""
    usage = o.usage
    row = (
        o.log_id(),
        o.account_id,
        o.grant_id,
        o.client_name,
        o.provider,
        o.endpoint,
        o.status,
        o.model,
        o.capability,
        o.error_type,
        o.latency_ms,
        o.upstream_latency_ms,
        None if usage is None else list(usage.counts()),
        o.cost_micros,
        o.streamed,
        round(o.created_at.timestamp() * 1_000_000),
        o.admitted,
        o.reservation_id,
        o.reserved_micros,
        o.reserved_periods,
        o.unknown_outcome_cost,
        o.abandoned,
        o.day,
        o.month,
        o.owned,
        o.key_id,
        o.ancestors,
    )
    data = pickle.dumps(row, protocol=5)
    return _LENGTH.pack(len(data)) + data


class _PlainValues(pickle.Unpickler):
    """Builds plain values only: a record naming any class or function is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError("a journal record holds plain values only")


def decode(data: bytes) -> Outcome:
    """The outcome of one record's pickle (without its length)."""
    (
        audit_id,
        account_id,
        grant_id,
        client_name,
        provider,
        endpoint,
        status,
        model,
        capability,
        error_type,
        latency_ms,
        upstream_latency_ms,
        usage,
        cost_micros,
        streamed,
        created_us,
        admitted,
        reservation_id,
        reserved_micros,
        reserved_periods,
        unknown_outcome_cost,
        abandoned,
        day,
        month,
        owned,
        *later,  # fields added since: a record of an older version has none
    ) = _PlainValues(io.BytesIO(data)).load()
    return Outcome(
        account_id=account_id,
        grant_id=grant_id,
        client_name=client_name,
        provider=provider,
        endpoint=endpoint,
        status=status,
        model=model,
        capability=capability,
        error_type=error_type,
        latency_ms=latency_ms,
        upstream_latency_ms=upstream_latency_ms,
        usage=None if usage is None else Usage.from_counts(usage),
        cost_micros=cost_micros,
        streamed=streamed,
        created_at=datetime.fromtimestamp(created_us / 1_000_000, tz=UTC),
        admitted=admitted,
        reservation_id=reservation_id,
        reserved_micros=reserved_micros,
        reserved_periods=tuple(reserved_periods),
        unknown_outcome_cost=unknown_outcome_cost,
        abandoned=abandoned,
        day=day,
        month=month,
        owned=tuple(owned),
        key_id=later[0] if later else None,
        ancestors=tuple(later[1]) if len(later) > 1 else (),
        audit_id=audit_id,
    )


@dataclass
class Segment:
    path: Path
    fd: int
    size: int = 0

    def close(self, *, delete: bool) -> None:
        if delete:
            with contextlib.suppress(OSError):
                self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self.fd)  # releases the lock


def _locked(path: Path, flags: int) -> Segment | None:
    """The file, opened and locked for this process; None if another process holds it."""
    try:
        fd = os.open(path, flags | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return Segment(path, fd)


class SettlementJournal:
    """This process's segments: the one being appended to, and the sealed ones whose
    outcomes are being written. Used from the event loop only."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._current: Segment | None = None
        self._sealed: list[Segment] = []
        self._broken = False

    def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._current = self._new_segment()

    def _new_segment(self) -> Segment | None:
        """Created and locked under a name no other process looks at, then renamed, so no
        process can take a segment being born for an orphan."""
        name = f"{os.getpid()}-{new_id()[:12]}"
        hidden = self.folder / f"{name}.new"
        segment = _locked(hidden, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL)
        if segment is None:
            self._fail(OSError("could not create a journal segment"))
            return None
        segment.path = self.folder / f"{name}{SUFFIX}"
        try:
            hidden.rename(segment.path)
        except OSError as exc:
            segment.close(delete=False)
            self._fail(exc)
            return None
        return segment

    def append(self, outcome: Outcome) -> None:
        segment = self._current
        if segment is None:
            return
        data = encode(outcome)
        try:
            os.write(segment.fd, data)
        except OSError as exc:  # a full disk must not fail the request: the sweeper remains
            self._fail(exc)
            return
        segment.size += len(data)

    def _fail(self, exc: OSError) -> None:
        if not self._broken:
            self._broken = True
            log.error("settlement journal unavailable (%s): a crash falls back to the sweeper", exc)
        self._current = None

    def seal(self) -> None:
        """Start a new segment: what the sealed one holds is all in the recorder's hands."""
        segment = self._current
        if segment is None or segment.size == 0:
            return
        self._sealed.append(segment)
        self._current = self._new_segment()

    def release_sealed(self) -> None:
        """Every outcome of the sealed segments is written: delete them."""
        sealed, self._sealed = self._sealed, []
        for segment in sealed:
            segment.close(delete=True)

    def close(self, *, delete: bool) -> None:
        """At shutdown: delete the segments if everything was written, else leave them to
        be replayed by the next process to start."""
        segments = [*self._sealed, *([self._current] if self._current else [])]
        self._sealed, self._current = [], None
        for segment in segments:
            segment.close(delete=delete or segment.size == 0)

    def orphans(self) -> list[Segment]:
        """Segments of processes that are gone, locked for this one now."""
        mine = {s.path for s in self._sealed} | ({self._current.path} if self._current else set())
        found: list[Segment] = []
        with contextlib.suppress(OSError):
            for path in sorted(self.folder.glob(f"*{SUFFIX}")):
                if path not in mine and (segment := _locked(path, os.O_RDONLY)) is not None:
                    found.append(segment)
        return found


def read_segment(segment: Segment) -> list[Outcome]:
    """Its outcomes; a record cut short by a crash, or unreadable, is skipped."""
    data = segment.path.read_bytes()
    outcomes: list[Outcome] = []
    start = 0
    while start + _LENGTH.size <= len(data):
        (length,) = _LENGTH.unpack_from(data, start)
        record = data[start + _LENGTH.size : start + _LENGTH.size + length]
        start += _LENGTH.size + length
        if len(record) < length:
            break  # the last record, cut short
        try:
            outcomes.append(decode(record))
        except (pickle.UnpicklingError, ValueError, TypeError, EOFError) as exc:
            log.warning("skipped an unreadable journal record: %s", type(exc).__name__)
    return outcomes
