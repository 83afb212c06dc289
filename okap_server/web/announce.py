"""Telling the person a request is waiting, on their own machine: open the consent page,
and raise a desktop notification (``desktop.py``).

``okap-server serve --open-browser`` / ``Settings.open_browser`` does both;
``Settings.desktop_notifications`` the notification alone. Each runs in a daemon thread,
so a slow browser start or notification server never delays the app's request.
"""

from __future__ import annotations

import threading
import webbrowser
from collections.abc import Callable

from okap_server.settings import Settings
from okap_server.web.desktop import notify_desktop


def announce(
    settings: Settings,
    consent_url: str,
    opener: Callable[[str], object] = webbrowser.open,
    *,
    client_name: str = "",
    notifier: Callable[[str], object] = notify_desktop,
) -> list[threading.Thread]:
    """Open the consent page and notify, as far as this vault is set to (the threads
    started, for tests to join)."""
    started: list[threading.Thread] = []
    if settings.open_browser:
        started.append(threading.Thread(target=opener, args=(consent_url,), daemon=True))
    if settings.open_browser or settings.desktop_notifications:
        started.append(threading.Thread(target=notifier, args=(client_name,), daemon=True))
    for thread in started:
        thread.start()
    return started
