"""Telling the person a request is waiting: on their own machine, open the consent page.

``okap-server serve --open-browser`` / ``Settings.open_browser``. The browser is opened in
a daemon thread so a slow browser start never delays the app's request.
"""

from __future__ import annotations

import threading
import webbrowser
from collections.abc import Callable

from okap_server.settings import Settings


def announce(
    settings: Settings, consent_url: str, opener: Callable[[str], object] = webbrowser.open
) -> threading.Thread | None:
    """Open the consent page when the vault runs on the person's own machine."""
    if not settings.open_browser:
        return None
    thread = threading.Thread(target=opener, args=(consent_url,), daemon=True)
    thread.start()
    return thread
