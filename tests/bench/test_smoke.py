"""The benchmark still runs end to end (``python -m bench.run --quick``), so it cannot rot.

Timings are never asserted: this machine's speed is not the code's. What is asserted is what a
reader of the report relies on: every target answered, with numbers, and no errors.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_benchmark_measures_okap_beside_direct_and_the_baseline(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--quick",
            "--duration",
            "0.5",
            "--warmup",
            "0.1",
            "--baselines",
            "httpx",
            "--no-pin",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["targets"] == ["direct", "passthrough-httpx", "okap"]
    seen = {(p["target"], p["mode"], p["concurrency"]) for p in results["points"]}
    for target in results["targets"]:
        for mode in ("json", "stream"):
            for c in (1, 32):
                assert (target, mode, c) in seen
    for p in results["points"]:
        m = p["median"]
        assert m["requests"] > 0, p
        assert m["errors"] == 0, p
        assert m["p50_ms"] is not None and m["p99_ms"] is not None
        if p["mode"] == "stream":
            assert m["ttfb_p50_ms"] is not None
        if p["target"] != "direct":
            assert m["server_cpu_ms_per_request"] is not None
    assert results["rss_mb"]["okap"] > 0
    # The printed table names every target; the quick run leaves RESULTS.md alone.
    for target in results["targets"]:
        assert f"| {target} |" in done.stdout
    assert "added p50 at c=1" in done.stdout
