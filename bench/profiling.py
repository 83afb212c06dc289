"""Sampling okap under load with py-spy and writing a plain-text flame summary.

py-spy's ``raw`` format is one collapsed stack per line (``frame;frame;frame count``). The
summary ranks functions by own time (the leaf frame) and by inclusive time (anywhere on the
stack), which is what says where a request's CPU goes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections import Counter
from pathlib import Path
from typing import Any

_LINE_NO = re.compile(r":\d+\)?$")


def py_spy() -> str | None:
    return shutil.which("py-spy")


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` → ``func (file.py)``, so lines of one function merge."""
    frame = frame.strip()
    if " (" in frame and frame.endswith(")"):
        name, where = frame[:-1].split(" (", 1)
        where = where.rsplit(":", 1)[0]
        parts = where.split("/")
        short = "/".join(parts[-2:]) if len(parts) > 1 else where
        return f"{name} ({short})"
    return frame


def summarise(raw: Path, top: int = 40) -> dict[str, Any]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        parts = [f for f in stack.split(";") if f.strip()]
        thread = "all"
        if parts and parts[0].startswith("thread ("):
            thread = parts.pop(0).split(": ", 1)[-1].strip()
        frames = [_frame_name(f) for f in parts]
        if not frames:
            continue
        total += count
        threads[thread] += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count

    def ranked(counter: Counter[str]) -> list[str]:
        return (
            [f"{100.0 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top)]
            if total
            else []
        )

    return {
        "samples": total,
        "threads": ranked(threads),
        "top_self": ranked(own),
        "top_inclusive": ranked(inclusive),
    }


def record(pid: int, seconds: float, out: Path, rate: int = 250) -> subprocess.Popen[bytes] | None:
    """Start py-spy on ``pid`` for ``seconds``; returns the process (None if not installed)."""
    exe = py_spy()
    if exe is None:
        return None
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
            "--threads",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def profile_under_load(
    pid: int, seconds: float, out_dir: Path, name: str, load: Any
) -> dict[str, Any] | None:
    """Run ``load()`` while py-spy samples ``pid``; write ``<name>.txt`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"{name}.raw.txt"
    spy = record(pid, seconds, raw)
    if spy is None:
        return None
    result: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: result.update(load=load()))
    runner.start()
    runner.join()
    _, err = spy.communicate(timeout=seconds + 60)
    if spy.returncode != 0 or not raw.exists():
        return {"error": err.decode(errors="replace")[-500:]}
    summary = summarise(raw)
    summary_file = out_dir / f"{name}.txt"
    lines = [
        f"py-spy record --threads --nonblocking (on-CPU samples only), {seconds:.0f} s, "
        f"{summary['samples']} samples",
        f"load: {result.get('load')}",
        "",
        "On-CPU samples by thread (the event loop is MainThread; database work runs in",
        "AnyIO worker threads):",
        *summary["threads"],
        "",
        "Top functions by own time (leaf frame):",
        *summary["top_self"],
        "",
        "Top functions by inclusive time (anywhere on the stack):",
        *summary["top_inclusive"],
        "",
    ]
    summary_file.write_text("\n".join(lines))
    raw.unlink(missing_ok=True)  # large; the summary is what is kept
    shown = summary_file.resolve().relative_to(Path(__file__).resolve().parent.parent)
    return {**summary, "summary_file": str(shown), "seconds": seconds}
