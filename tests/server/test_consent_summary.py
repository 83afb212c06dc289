"""What the consent page adds up and how it writes money: the numbers a person approves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

import pytest

from okap_server.authorization.narrowing import NarrowingError
from okap_server.catalog import ProviderCatalog
from okap_server.clock import isoformat_z
from okap_server.settings import DefaultLimits, Settings
from okap_server.web.consent_form import entry_views, parse_number
from okap_server.web.consent_summary import (
    Summary,
    input_value,
    monthly_reach,
)
from okap_server.web.templating import make_templates


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (5, "$5.00"),
        (5.0, "$5.00"),
        (1234.5, "$1,234.50"),
        (0, "$0.00"),
        (0.004, "<$0.01"),
        (0.0099, "<$0.01"),
        (0.01, "$0.01"),
        (None, "no limit"),
    ],
)
def test_the_money_filter(tmp_path: Path, amount: float | None, shown: str) -> None:
    env = make_templates(Settings(home=tmp_path))
    html = env.from_string("<p>{{ amount | money }}</p>").render(amount=amount)
    assert html == f"<p>{escape(shown)}</p>"  # what a browser shows is ``shown``


def test_monthly_reach_is_the_tightest_spend_bound() -> None:
    assert monthly_reach({"monthly_spend": 10, "daily_spend": 2.5}) == 10
    assert monthly_reach({"daily_spend": 0.1}) == pytest.approx(3.1)  # 31 days at most
    assert monthly_reach({"monthly_spend": 10, "total_spend": 4}) == 4
    assert monthly_reach({"requests_per_day": 500}) is None


def test_the_summary_sentence() -> None:
    names = ["OpenAI", "Anthropic", "Google Gemini"]
    three = Summary(names, 15.0, [], None, None, expiry_asked=False)
    assert three.spend_text == "up to $15.00 / month across 3 providers"
    one = Summary(["OpenAI"], 0.004, [], None, None, expiry_asked=False)
    assert one.spend_text == "up to <$0.01 / month on OpenAI"
    none = Summary(names[:2], 0.0, names[:2], None, None, expiry_asked=False)
    assert none.spend_text == "no spend limit across 2 providers"
    part = Summary(names[:2], 5.0, ["Anthropic"], None, None, expiry_asked=False)
    assert part.spend_text == (
        "up to $5.00 / month across 2 providers, plus whatever Anthropic may spend (no spend limit)"
    )


def test_input_values_read_as_money_without_rounding_an_ask_up() -> None:
    assert input_value("monthly_spend", 5.0) == "5.00"
    assert input_value("daily_spend", 2.5) == "2.50"
    assert input_value("daily_spend", 0.005) == "0.005"  # "0.01" would exceed max=0.005
    assert input_value("requests_per_day", 1000) == "1,000"
    assert input_value("monthly_spend", 1234.5) == "1,234.50"
    assert input_value("total_spend", None) == ""


def test_the_request_says_which_expiries_were_asked() -> None:
    """Known, not guessed: the stored record decides, even at exactly the default's length."""
    made = datetime(2026, 12, 3, 13, 0, tzinfo=UTC)
    at_default = isoformat_z(made + timedelta(days=90))
    asked = [
        {"provider": p, "models": [], "capabilities": ["chat"], "limits": {}, "expires": at_default}
        for p in ("openai", "anthropic")
    ]
    catalog = ProviderCatalog.from_settings(Settings())
    shown = entry_views(asked, catalog, [], DefaultLimits(), expiry_asked=[True, False])
    assert [v.expires_asked for v in shown] == [True, False]
    older = entry_views(asked, catalog, [], DefaultLimits(), expiry_asked=None)
    assert [v.expires_asked for v in older] == [False, False]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("requests_per_day", 1000),
        ("requests_per_minute", 60),
        ("tokens_per_request", 1_000_000),
        ("monthly_spend", 1234.5),
        ("daily_spend", 0.005),
        ("total_spend", 1_000_000.0),
    ],
)
def test_the_form_parses_what_it_renders(name: str, value: float) -> None:
    assert parse_number("openai", name, input_value(name, value)) == value


@pytest.mark.parametrize("typed", ["1000", "$1,000", "1,000.50", " 12 ", "$ 5"])
def test_a_person_may_type_with_or_without_grouping(typed: str) -> None:
    assert parse_number("openai", "monthly_spend", typed) is not None


@pytest.mark.parametrize("typed", ["1,5", "10,00", "1,0000", "abc", "nan", "1,000,00"])
def test_a_comma_out_of_place_is_refused_not_guessed(typed: str) -> None:
    with pytest.raises(NarrowingError, match="must be a number"):
        parse_number("openai", "monthly_spend", typed)
