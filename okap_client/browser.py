"""Whether a browser can be opened on this machine, and opening one."""

from __future__ import annotations

import os
import sys
import webbrowser
from collections.abc import Mapping

# Text-mode browsers would take over the terminal the device flow needs.
_TEXT_BROWSERS = {"www-browser", "lynx", "links", "elinks", "w3m"}


def browser_available(
    environ: Mapping[str, str] | None = None, platform: str | None = None
) -> bool:
    """False on headless machines (SSH without a display, CI, no GUI browser found)."""
    env = os.environ if environ is None else environ
    plat = platform or sys.platform
    if env.get("CI") or env.get("OKAP_NO_BROWSER"):
        return False
    remote = bool(env.get("SSH_CONNECTION") or env.get("SSH_TTY"))
    if plat.startswith("linux") or "bsd" in plat:
        if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
            return False
    elif remote:
        return False
    if environ is not None:
        return True
    try:
        found = webbrowser.get()
    except webbrowser.Error:
        return False
    return getattr(found, "name", "") not in _TEXT_BROWSERS


def open_in_browser(url: str) -> bool:
    """Open ``url`` in a new browser tab; False if no browser took it."""
    try:
        return bool(webbrowser.open(url, new=2))
    except webbrowser.Error:
        return False
