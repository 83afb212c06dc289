"""Turning the runs into numbers people read: medians, the tables, JSON and RESULTS.md."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

METRICS = (
    "rps",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "ttfb_p50_ms",
    "ttfb_p99_ms",
    "server_cpu_ms_per_request",
    "errors",
    "requests",
)
START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"


def median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in METRICS:
        values = [r[key] for r in rounds if r.get(key) is not None]
        out[key] = round(statistics.median(values), 4) if values else None
    return out


def point(results: dict[str, Any], target: str, mode: str, c: int) -> dict[str, Any] | None:
    for p in results["points"]:
        if p["target"] == target and p["mode"] == mode and p["concurrency"] == c:
            median: dict[str, Any] = p["median"]
            return median
    return None


def added(results: dict[str, Any], target: str, mode: str, c: int, key: str) -> float | None:
    mine, base = point(results, target, mode, c), point(results, "direct", mode, c)
    if not mine or not base or mine.get(key) is None or base.get(key) is None:
        return None
    return round(float(mine[key]) - float(base[key]), 3)


def fmt(value: Any, digits: int = 2, plus: bool = False) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float | int):
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.{digits}f}"
        return f"+{text}" if plus and value >= 0 else text
    return str(value)


def detail_table(results: dict[str, Any]) -> str:
    lines = [
        "| target | mode | c | req/s | p50 ms | p99 ms | added p50 | TTFB p50 | added TTFB "
        "| CPU ms/req | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in results["points"]:
        m, t, mode, c = p["median"], p["target"], p["mode"], p["concurrency"]
        lines.append(
            f"| {t} | {mode} | {c} | {fmt(m['rps'])} | {fmt(m['p50_ms'], 3)} "
            f"| {fmt(m['p99_ms'], 3)} | {fmt(added(results, t, mode, c, 'p50_ms'), 3, True)} "
            f"| {fmt(m['ttfb_p50_ms'], 3)} "
            f"| {fmt(added(results, t, mode, c, 'ttfb_p50_ms'), 3, True)} "
            f"| {fmt(m['server_cpu_ms_per_request'], 3)} | {fmt(m['errors'], 0)} |"
        )
    return "\n".join(lines)


def summary_table(results: dict[str, Any]) -> str:
    lines = [
        "| target | req/s c=1 | added p50 c=1 | req/s c=32 | added p50 c=32 "
        "| stream TTFB added c=1 | stream req/s c=32 | CPU ms/req c=32 | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for target in results["targets"]:
        one, many = point(results, target, "json", 1), point(results, target, "json", 32)
        stream_many = point(results, target, "stream", 32)
        lines.append(
            f"| {target} | {fmt((one or {}).get('rps'))} "
            f"| {fmt(added(results, target, 'json', 1, 'p50_ms'), 3, True)} ms "
            f"| {fmt((many or {}).get('rps'))} "
            f"| {fmt(added(results, target, 'json', 32, 'p50_ms'), 3, True)} ms "
            f"| {fmt(added(results, target, 'stream', 1, 'ttfb_p50_ms'), 3, True)} ms "
            f"| {fmt((stream_many or {}).get('rps'))} "
            f"| {fmt((many or {}).get('server_cpu_ms_per_request'), 3)} "
            f"| {fmt(results['rss_mb'].get(target))} |"
        )
    return "\n".join(lines)


def targets_check(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, as measured in this run."""
    checks: list[dict[str, Any]] = []
    okap_p50 = added(results, "okap", "json", 1, "p50_ms")
    okap_rps = (point(results, "okap", "json", 32) or {}).get("rps")
    okap_ttfb = added(results, "okap", "stream", 1, "ttfb_p50_ms")
    lite_p50 = added(results, "litellm", "json", 1, "p50_ms")
    lite_rps = (point(results, "litellm", "json", 32) or {}).get("rps")

    def check(goal: str, measured: str, met: bool | None) -> None:
        checks.append({"goal": goal, "measured": measured, "met": met})

    check(
        "added p50 at c=1 <= 1.5 ms",
        f"{fmt(okap_p50, 3)} ms",
        None if okap_p50 is None else okap_p50 <= 1.5,
    )
    if lite_p50 is not None and okap_p50 is not None:
        ratio = lite_p50 / okap_p50 if okap_p50 > 0 else float("inf")
        check("added p50 at c=1 >= 14x less than LiteLLM", f"{ratio:.1f}x", ratio >= 14)
    check(
        "req/s at c=32 >= 1,000 (one worker)",
        fmt(okap_rps),
        None if okap_rps is None else okap_rps >= 1000,
    )
    if lite_rps and okap_rps is not None:
        ratio = okap_rps / lite_rps
        check("req/s at c=32 >= 20x LiteLLM", f"{ratio:.1f}x", ratio >= 20)
    check(
        "added stream TTFB (c=1) <= 2 ms",
        f"{fmt(okap_ttfb, 3)} ms",
        None if okap_ttfb is None else okap_ttfb <= 2,
    )
    for c in (1, 32):
        mine = (point(results, "okap", "json", c) or {}).get("server_cpu_ms_per_request")
        base = (point(results, "passthrough-httpx", "json", c) or {}).get(
            "server_cpu_ms_per_request"
        )
        if mine and base:
            ratio = mine / base
            check(
                f"CPU/request <= 1.5x minimal passthrough (c={c})",
                f"{ratio:.2f}x ({mine:.3f} vs {base:.3f} ms)",
                ratio <= 1.5,
            )
    return checks


def checks_table(checks: list[dict[str, Any]]) -> str:
    lines = ["| target (issue 7) | measured | met |", "|---|---|---|"]
    for c in checks:
        met = "n/a" if c["met"] is None else ("yes" if c["met"] else "**no**")
        lines.append(f"| {c['goal']} | {c['measured']} | {met} |")
    return "\n".join(lines)


def scale_section(results: dict[str, Any]) -> str:
    scale = results.get("scale") or {}
    parts: list[str] = []
    for name, value in scale.items():
        if isinstance(value, dict) and "error" in value:
            parts.append(f"The {name} check failed: `{value['error']}`.\n")
    grants = scale.get("grants")
    if isinstance(grants, list) and grants:
        parts.append("Grant lookup and limit checks by table size (okap, non-streaming):\n")
        parts.append("| vault | tokens used | c | req/s | p50 ms | p99 ms | CPU ms/req |")
        parts.append("|---|---|---|---|---|---|---|")
        for row in grants:
            m = row["median"]
            parts.append(
                f"| {row['grants']:,} grants | {row['tokens']:,} | {row['concurrency']} "
                f"| {fmt(m['rps'])} | {fmt(m['p50_ms'], 3)} | {fmt(m['p99_ms'], 3)} "
                f"| {fmt(m['server_cpu_ms_per_request'], 3)} |"
            )
        parts.append("")
    big = scale.get("big_stream")
    if isinstance(big, list) and big:
        parts.append(
            "A 100 MB streamed response (one request, read and discarded by the client):\n"
        )
        parts.append(
            "| target | bytes | seconds | MB/s | RSS before MB | peak RSS MB | growth MB |"
        )
        parts.append("|---|---|---|---|---|---|---|")
        for row in big:
            parts.append(
                f"| {row['target']} | {row['bytes']:,} | {fmt(row['seconds'])} "
                f"| {fmt(row['mb_per_s'])} | {fmt(row['rss_before_mb'])} "
                f"| {fmt(row['rss_peak_mb'])} | {fmt(row['rss_growth_mb'])} |"
            )
        parts.append("")
    workers = scale.get("workers")
    if isinstance(workers, list) and workers:
        parts.append("okap with N uvicorn workers (non-streaming, unpinned):\n")
        parts.append("| workers | database | c | req/s | p50 ms | p99 ms | CPU ms/req | errors |")
        parts.append("|---|---|---|---|---|---|---|---|")
        for row in workers:
            m = row["median"]
            parts.append(
                f"| {row['workers']} | {row['database']} | {row['concurrency']} "
                f"| {fmt(m['rps'])} | {fmt(m['p50_ms'], 3)} | {fmt(m['p99_ms'], 3)} "
                f"| {fmt(m['server_cpu_ms_per_request'], 3)} | {fmt(m['errors'], 0)} |"
            )
        parts.append("")
    limits = scale.get("limit_across_workers")
    if isinstance(limits, dict) and "ok" in limits:
        parts.append(
            f"Rate limit across {limits['workers']} workers: a grant allowing "
            f"{limits['limit']} requests a day got {limits['ok']} answers 200 and "
            f"{limits['refused']} answers 429 out of {limits['sent']} concurrent requests "
            f"({'held' if limits['ok'] <= limits['limit'] else '**overshot**'}).\n"
        )
    return "\n".join(parts)


def components_table(runs: list[dict[str, Any]]) -> str:
    """okap's hot-path steps timed in process, one column per vault size."""
    names = list(runs[0]["steps"])
    head = " | ".join(f"{r['grants']:,} grants: median / p99 µs" for r in runs)
    lines = [f"| step ({runs[0]['database']}) | {head} |", "|---" * (len(runs) + 1) + "|"]
    for name in names:
        cells = " | ".join(
            f"{fmt(r['steps'][name]['median_us'], 1)} / {fmt(r['steps'][name]['p99_us'], 1)}"
            for r in runs
        )
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def render_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        START,
        f"Run of {meta['date']} on {meta['nproc']} CPUs ({meta['cpu_model']}), Python "
        f"{meta['python']}, {meta['kernel']}. Each point: median of {meta['rounds']} round(s) "
        f"of {meta['duration']} s after {meta['warmup']} s of warm-up. Load generator: "
        f"{meta['load_generator']}. CPU pinning: {meta['pinning']}. okap database: "
        f"{meta['okap_database']}; okap log level {meta['okap_log_level']}.",
        "",
        f"How quiet the machine was: {meta['busy_before_percent']}% of all CPUs busy in the "
        f"2 s before the run, load average {meta['loadavg_before']} before and "
        f"{meta.get('loadavg_after', 'n/a')} after.",
        "",
        "### Summary",
        "",
        summary_table(results),
        "",
        "### Targets",
        "",
        checks_table(results["checks"]),
        "",
        "### Every point",
        "",
        detail_table(results),
        "",
    ]
    scale = scale_section(results)
    if scale:
        lines += [
            "### Scale checks",
            "",
            f"Median of {meta.get('scale_rounds', 1)} round(s) of {meta['duration']} s per point.",
            "",
            scale,
        ]
    if isinstance(results.get("components"), list):
        lines += [
            "### okap's hot-path steps, timed in process",
            "",
            "`python -m bench.components`: each step called on its own, 2,000 times, against a "
            "seeded vault; per call.",
            "",
            components_table(results["components"]),
            "",
        ]
    profile = results.get("profile")
    if profile and "top_self" in profile:
        lines += [
            "### Profile",
            "",
            f"py-spy, {profile['seconds']} s of okap under {profile['load']}: "
            f"`{profile['summary_file']}`. On-CPU samples by thread, then the top functions "
            "by own time:",
            "",
            "```",
            *profile["threads"],
            "",
            *profile["top_self"][:15],
            "```",
            "",
        ]
    lines.append(END)
    return "\n".join(lines)


def write_results_md(path: Path, results: dict[str, Any], preamble: str) -> None:
    """Replace the generated block of RESULTS.md, keeping any hand-written text around it."""
    block = render_markdown(results)
    if path.exists():
        text = path.read_text()
        if START in text and END in text:
            head, rest = text.split(START, 1)
            tail = rest.split(END, 1)[1]
            path.write_text(head + block + tail)
            return
    path.write_text(preamble + "\n" + block + "\n")


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
