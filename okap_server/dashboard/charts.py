"""Server-rendered SVG charts: no JavaScript, no CDN, and allowed by the page CSP (SVG
presentation attributes are not inline styles)."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

from okap_server.dashboard import formatting as fmt

WIDTH = 720
HEIGHT = 180
PAD_LEFT = 56
PAD_BOTTOM = 24
PAD_TOP = 12


def usage_bar(percent: int, level: str, label: str) -> Markup:
    """A horizontal bar, 0..100 %, labelled for screen readers."""
    pct = max(0, min(100, percent))
    return Markup(
        '<svg class="bar bar-{level}" viewBox="0 0 100 8" preserveAspectRatio="none" '
        'role="img" aria-label="{label}" focusable="false">'
        '<rect class="bar-track" x="0" y="0" width="100" height="8" rx="4"></rect>'
        '<rect class="bar-fill" x="0" y="0" width="{pct}" height="8" rx="4"></rect></svg>'
    ).format(level=level, label=label, pct=pct)


def _axis_money(amount: float) -> str:
    if amount == 0:
        return "$0"
    if amount < 0.1:
        return f"${amount:.3f}".rstrip("0")
    return fmt.usd(amount)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10 if value >= 1 else 0.01
    for step in (1, 2, 2.5, 5, 10):
        top = step * magnitude
        if top >= value:
            return float(top)
    return float(value)


def daily_chart(points: list[tuple[str, float, int]], *, money: bool = True) -> Markup:
    """Columns of spend (or requests) per day with a labelled axis; a <title> per column
    gives exact numbers on hover and to screen readers."""
    values = [p[1] if money else float(p[2]) for p in points]
    top = _nice_max(max(values, default=0.0))
    plot_w = WIDTH - PAD_LEFT - 8
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    step = plot_w / max(len(points), 1)
    total = sum(values)
    summary = (
        f"{'Spend' if money else 'Requests'} per day over the last "
        f"{fmt.plural(len(points), 'day')}, "
        f"{fmt.usd(total) if money else fmt.plural(total, 'request')} in all"
    )
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(summary)}">'
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = PAD_TOP + plot_h * (1 - fraction)
        amount = top * fraction
        if not money and not float(amount).is_integer():
            continue
        text = _axis_money(amount) if money else f"{amount:,.0f}"
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}"></line>'
            f'<text class="axis" x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(text)}</text>"
        )
    for index, (day, spend, requests) in enumerate(points):
        value = spend if money else float(requests)
        h = plot_h * value / top if top else 0
        if value > 0:
            h = max(h, 2.0)  # any use at all stays visible
        x = PAD_LEFT + index * step + step * 0.15
        tip = f"{day}: {fmt.usd(spend)}, {fmt.plural(requests, 'request')}"
        parts.append(
            f'<rect class="column" x="{x:.1f}" y="{PAD_TOP + plot_h - h:.1f}" '
            f'width="{step * 0.7:.1f}" height="{max(h, 0):.1f}"><title>{escape(tip)}</title></rect>'
        )
        last = len(points) - 1
        if index == last or (index % 7 == 0 and last - index >= 4):
            parts.append(
                f'<text class="axis" x="{x + step * 0.35:.1f}" y="{HEIGHT - 6}" '
                f'text-anchor="middle">{escape(day[5:])}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 -- every value above is escaped or numeric
