"""--open-browser: a new request opens its consent page, and only when asked to."""

from __future__ import annotations

from pathlib import Path

from okap_server.settings import Settings
from okap_server.web.announce import announce


def test_consent_page_opens_only_when_enabled(tmp_path: Path) -> None:
    opened: list[str] = []
    assert announce(Settings(home=tmp_path), "http://127.0.0.1:1/consent/x", opened.append) is None
    thread = announce(
        Settings(home=tmp_path, open_browser=True), "http://127.0.0.1:1/consent/x", opened.append
    )
    assert thread is not None
    thread.join(5)
    assert opened == ["http://127.0.0.1:1/consent/x"]
