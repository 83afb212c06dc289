"""A desktop notification on the person's own machine when an app asks for access.

The freedesktop.org Desktop Notifications spec (``org.freedesktop.Notifications.Notify``
on the session bus, spoken with ``jeepney``), or the ``notify-send`` command where the
D-Bus call cannot be made. Where neither works (a server, a container, no desktop) it
gives up quietly: the dashboard's badge and the consent link still tell the person.
It runs in a thread of its own (``announce.py``), never on a request's path, and each
attempt is bounded by :data:`TIMEOUT_SECONDS`.

The app's name is self-asserted: it is shortened and escaped (the spec lets servers read
the body as markup), and the summary says it is an app's claim, as the consent page does.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from html import escape

log = logging.getLogger("okap.desktop")

TIMEOUT_SECONDS = 5.0
APP_NAME = "okap"
ICON = "dialog-password"  # a freedesktop icon-naming-spec name
MAX_NAME = 60


def message(client_name: str) -> tuple[str, str]:
    """The notification's summary and body."""
    name = " ".join(client_name.split())[:MAX_NAME] or "An app"
    return (
        "An app asks for access to your AI keys",
        f"{escape(name)} is waiting for your decision in your okap vault.",
    )


def notify_dbus(summary: str, body: str) -> bool:
    """``Notify`` on the session bus; True if a notification server took it."""
    try:
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection
    except ImportError:  # not installed on this platform
        return False
    server = DBusAddress(
        "/org/freedesktop/Notifications",
        bus_name="org.freedesktop.Notifications",
        interface="org.freedesktop.Notifications",
    )
    call = new_method_call(
        server, "Notify", "susssasa{sv}i", (APP_NAME, 0, ICON, summary, body, [], {}, -1)
    )
    try:
        with open_dbus_connection(bus="SESSION") as connection:
            connection.send_and_get_reply(call, timeout=TIMEOUT_SECONDS)
    except Exception as exc:  # no session bus, no notification server, a timeout
        log.debug("no desktop notification over D-Bus: %s", type(exc).__name__)
        return False
    return True


def notify_send(summary: str, body: str) -> bool:
    """The ``notify-send`` command (libnotify), where it is installed."""
    command = shutil.which("notify-send")
    if command is None:
        return False
    try:
        done = subprocess.run(
            [command, "--app-name", APP_NAME, "--icon", ICON, "--", summary, body],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("notify-send failed: %s", type(exc).__name__)
        return False
    return done.returncode == 0


def notify_desktop(client_name: str) -> str:
    """Tell the person; says how (``dbus``, ``notify-send``) or ``none``, never raises."""
    summary, body = message(client_name)
    if notify_dbus(summary, body):
        return "dbus"
    if notify_send(summary, body):
        return "notify-send"
    return "none"
