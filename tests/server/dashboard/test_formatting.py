"""Numbers and times as people read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from okap_server.dashboard import charts
from okap_server.dashboard import formatting as fmt

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_money_lines() -> None:
    assert fmt.spend_line(3.2, 10.0, "month") == "$3.20 of $10.00 this month"
    assert fmt.spend_line(0.004, 2.0, "day") == "<$0.01 of $2.00 today"
    assert fmt.spend_line(1234.5, None, "total") == "$1,234.50 in total (no limit)"
    assert fmt.requests_line(3, 1000) == "3 of 1,000 requests today"
    assert fmt.usd_exact(42) == "$0.000042" and fmt.usd_exact(1_230_000) == "$1.23"
    assert fmt.percent(5, 10) == 50 and fmt.percent(20, 10) == 100 and fmt.percent(1, None) == 0
    assert fmt.plain_number(5.0) == "5" and fmt.plain_number(2.5) == "2.5"


def test_times() -> None:
    assert fmt.expiry(NOW + timedelta(days=12, hours=3), NOW) == "expires in 12 days"
    assert fmt.expiry(NOW + timedelta(hours=1, minutes=5), NOW) == "expires in 1 hour"
    assert fmt.expiry(NOW - timedelta(days=2), NOW) == "expired 2 days ago"
    assert fmt.expiry(NOW, NOW, revoked=True) == "revoked"
    assert fmt.ago(None, NOW) == "never"
    assert fmt.ago(NOW - timedelta(seconds=5), NOW) == "just now"
    assert fmt.ago((NOW - timedelta(minutes=3)).replace(tzinfo=None), NOW) == "3 minutes ago"


def test_chart_is_escaped_svg_with_a_summary() -> None:
    points = [("2026-11-22", 0.5, 2), ("2026-11-23", 1.25, 5)]
    svg = str(charts.daily_chart(points))
    assert svg.startswith("<svg") and 'aria-label="Spend per day over the last 2 days, $1.75' in svg
    assert "<title>2026-11-23: $1.25, 5 requests</title>" in svg
    bar = str(charts.usage_bar(150, "full", 'a "quoted" <label>'))
    assert 'width="100"' in bar and "&lt;label&gt;" in bar and "&#34;quoted&#34;" in bar


def test_one_is_singular() -> None:
    from okap_server.dashboard import formatting as fmt

    assert fmt.requests_line(1, 1) == "1 of 1 request today"
    assert fmt.requests_line(0, 50) == "0 of 50 requests today"
    assert fmt.limit_value("requests_per_day", 1) == "1 request a day"
    assert fmt.limit_value("requests_per_day", 11) == "11 requests a day"


def test_counts_agree_with_their_nouns_everywhere() -> None:
    from okap_server.dashboard import charts
    from okap_server.dashboard import formatting as fmt

    assert fmt.plural(1, "request") == "1 request"
    assert fmt.plural(0, "request") == "0 requests"
    assert fmt.plural(1000, "day") == "1,000 days"
    assert fmt.limit_value("tokens_per_request", 1) == "at most 1 token a request"
    assert fmt.limit_value("requests_per_minute", 1000) == "1,000 requests a minute"
    one_request = str(charts.daily_chart([("2026-12-01", 0.0, 1)], money=False))
    assert "over the last 1 day, 1 request in all" in one_request
    assert "1 requests" not in one_request and "1 days" not in one_request
