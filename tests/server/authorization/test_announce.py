"""--open-browser: a new request opens its consent page and raises a desktop notification,
and only when asked to (the notification alone: desktop_notifications)."""

from __future__ import annotations

from pathlib import Path

from okap_server.settings import Settings
from okap_server.web.announce import announce

URL = "http://127.0.0.1:1/consent/x"


def test_consent_page_opens_only_when_enabled(tmp_path: Path) -> None:
    opened: list[str] = []
    told: list[str] = []

    def ask(settings: Settings) -> None:
        for thread in announce(
            settings, URL, opened.append, client_name="Notes", notifier=told.append
        ):
            thread.join(5)

    ask(Settings(home=tmp_path))
    assert opened == [] and told == []
    ask(Settings(home=tmp_path, open_browser=True))
    assert opened == [URL] and told == ["Notes"]
    ask(Settings(home=tmp_path, desktop_notifications=True))  # the notification alone
    assert opened == [URL] and told == ["Notes", "Notes"]
