"""The settlement journal: an outcome read back is the outcome written, and a segment is
replayed only once its process is gone (its lock released)."""

from __future__ import annotations

import pickle
from pathlib import Path

from okap_server.clock import utcnow
from okap_server.proxy.journal import SettlementJournal, decode, encode, read_segment
from okap_server.proxy.providers.base import Usage
from okap_server.proxy.recorder import Outcome


def outcome(**changes: object) -> Outcome:
    fields: dict[str, object] = {
        "account_id": "acc_1",
        "grant_id": "grt_1",
        "client_name": "Notes “β”",
        "provider": "openai",
        "endpoint": "POST chat/completions",
        "status": 200,
        "model": "gpt-4o-mini",
        "capability": "chat",
        "latency_ms": 1.5,
        "upstream_latency_ms": 1.25,
        "usage": Usage(12, 5, 2, 1),
        "cost_micros": 5,
        "streamed": True,
        "created_at": utcnow(),
        "admitted": True,
        "reservation_id": "rsv_abc",
        "reserved_micros": 2481,
        "reserved_periods": ("day:2026-01-01", "total"),
        "unknown_outcome_cost": 2481,
        "day": "day:2026-01-01",
        "month": "month:2026-01",
        "owned": ("file-abc", "resp_1"),  # the grant owns these once settled (ownership.py)
    }
    fields.update(changes)
    return Outcome(**fields)  # type: ignore[arg-type]


def test_an_outcome_reads_back_as_written() -> None:
    for original in (outcome(), outcome(usage=None, reservation_id=None, admitted=False)):
        copy = decode(encode(original)[4:])  # a record: its length, then its values
        assert copy == original
        assert copy.log_id() == original.log_id()  # the same audit row, however often written


def test_modality_counts_read_back_and_an_older_records_usage_still_reads() -> None:
    """Usage is stored by position, new counts appended: a record with the first four
    counts only (written before modality counts) reads with the rest at zero."""
    media = Usage(900, 1_200, 0, 100, input_audio_tokens=300, output_image_tokens=1_120)
    rich = outcome(usage=Usage(**{**vars(media), "cache_write_1h_tokens": 100, "web_searches": 2}))
    assert decode(encode(rich)[4:]) == rich
    row = pickle.loads(encode(outcome())[4:])
    older = pickle.dumps((*row[:12], [12, 5, 2, 1], *row[13:]), protocol=5)
    assert decode(older).usage == Usage(12, 5, 2, 1)


def test_only_a_dead_processs_segment_is_an_orphan(tmp_path: Path) -> None:
    folder = tmp_path / "journal"
    alive = SettlementJournal(folder)
    alive.open()
    alive.append(outcome())
    other = SettlementJournal(folder)
    other.open()
    assert other.orphans() == []  # held by a live journal (its lock)
    alive.close(delete=False)  # as a killed process leaves it: the lock goes, the file stays
    (orphan,) = other.orphans()
    assert [o.reservation_id for o in read_segment(orphan)] == ["rsv_abc"]
    orphan.close(delete=True)
    other.close(delete=True)
    assert list(folder.iterdir()) == []
    assert oct(folder.stat().st_mode & 0o777) == "0o700"


def test_a_record_naming_a_class_is_refused() -> None:
    import pickle

    import pytest

    with pytest.raises(pickle.UnpicklingError):
        decode(pickle.dumps(Path("/etc/passwd")))


def test_appends_of_one_loop_iteration_share_one_write_that_answers_wait_for(
    tmp_path: Path,
) -> None:
    """On the event loop, records are buffered and written together once per iteration;
    ``written`` returns only once the file has them (an answer waits for it)."""
    import asyncio
    import os

    journal = SettlementJournal(tmp_path / "journal")
    journal.open()
    assert journal._current is not None
    path = journal._current.path
    writes: list[int] = []
    real_write = os.write

    def counting_write(fd: int, data: bytes) -> int:
        writes.append(len(data))
        return real_write(fd, data)

    async def answers() -> list[int]:
        sizes = []
        for n in range(3):
            journal.append(outcome(reservation_id=f"rsv_{n}"))
        sizes.append(path.stat().st_size)  # nothing written yet: buffered
        await journal.written()
        sizes.append(path.stat().st_size)
        journal.append(outcome(reservation_id="rsv_alone"))
        await journal.written(at_once=True)  # no other request to share with: now
        sizes.append(path.stat().st_size)
        return sizes

    os.write = counting_write  # type: ignore[assignment]
    try:
        before, shared, alone = asyncio.run(answers())
    finally:
        os.write = real_write
    assert before == 0 and 0 < shared < alone
    assert len(writes) == 2  # three records in one write, then the lone one
    journal.close(delete=False)
    segment = SettlementJournal(tmp_path / "journal").orphans()[0]
    ids = ["rsv_0", "rsv_1", "rsv_2", "rsv_alone"]
    assert [o.reservation_id for o in read_segment(segment)] == ids
    segment.close(delete=True)


def test_a_seal_or_close_writes_what_is_buffered_first(tmp_path: Path) -> None:
    import asyncio

    journal = SettlementJournal(tmp_path / "journal")
    journal.open()

    async def seal_with_a_buffered_record() -> None:
        journal.append(outcome())
        journal.seal()  # the sealed segment holds it: the recorder writes it next

    asyncio.run(seal_with_a_buffered_record())
    (sealed,) = journal._sealed
    assert [o.reservation_id for o in read_segment(sealed)] == ["rsv_abc"]
    journal.close(delete=True)
