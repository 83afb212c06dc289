"""The desktop nudge: a new pending request raises a freedesktop notification on the
session bus (a private ``dbus-daemon`` with a notification server on it), or runs
``notify-send``, or, with neither, gives up quietly without slowing the app's request."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from jeepney import new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

from okap_server.context import Vault
from okap_server.settings import Settings
from okap_server.web.desktop import notify_desktop
from tests.support.fake_upstream import FakeUpstream
from tests.support.process import server_env, vault_process

needs_dbus = pytest.mark.skipif(
    shutil.which("dbus-daemon") is None, reason="dbus-daemon is not installed"
)
ASK = {
    "okap": "1.0",
    "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
    "client": {"name": "Notes <b>bold</b>"},
}


class NotificationServer:
    """``org.freedesktop.Notifications`` on a bus: records each ``Notify`` call."""

    def __init__(self, address: str) -> None:
        self.connection = open_dbus_connection(bus=address)
        self.connection.send_and_get_reply(
            message_bus.RequestName("org.freedesktop.Notifications"), timeout=5
        )
        self.calls: list[tuple[Any, ...]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                call = self.connection.receive(timeout=0.2)
            except TimeoutError:
                continue
            if call.header.fields.get(3) == "Notify":  # the member field
                self.calls.append(call.body)
                self.connection.send(new_method_return(call, "u", (len(self.calls),)))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.connection.close()


@contextmanager
def session_bus() -> Iterator[str]:
    """A private session bus; its address."""
    daemon = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert daemon.stdout is not None
        yield daemon.stdout.readline().strip()
    finally:
        daemon.terminate()
        daemon.wait(10)


@needs_dbus
@pytest.mark.slow
def test_a_pending_request_raises_a_desktop_notification(
    settings: Settings, vault: Vault, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    with session_bus() as address:
        server = NotificationServer(address)
        env = {
            **server_env(settings, fake_upstream),
            "DBUS_SESSION_BUS_ADDRESS": address,
            "OKAP_DESKTOP_NOTIFICATIONS": "true",
        }
        try:
            with vault_process(env, settings.port, tmp_path / "serve.log"):
                url = f"http://127.0.0.1:{settings.port}/okap/authorize"
                pending = httpx.post(url, json=ASK, headers={"Prefer": "wait=0"})
                assert pending.json()["status"] == "pending", pending.text
                deadline = time.monotonic() + 10
                while not server.calls and time.monotonic() < deadline:
                    time.sleep(0.05)
        finally:
            server.close()
    assert len(server.calls) == 1
    app_name, _, icon, summary, body, actions, hints, timeout = server.calls[0]
    assert app_name == "okap" and icon == "dialog-password"
    assert summary == "An app asks for access to your AI keys"
    assert body == "Notes &lt;b&gt;bold&lt;/b&gt; is waiting for your decision in your okap vault."


def test_no_notification_service_is_quiet_and_quick(tmp_path: Path) -> None:
    """No session bus and no notify-send: nothing raised, nothing waited for."""
    started = time.monotonic()
    with environment(DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path}/none", PATH=str(tmp_path)):
        assert notify_desktop("Notes") == "none"
    assert time.monotonic() - started < 2


def test_notify_send_where_dbus_cannot_be_reached(tmp_path: Path) -> None:
    said = tmp_path / "said"
    command = tmp_path / "notify-send"
    command.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {said}\n')
    command.chmod(0o755)
    with environment(DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path}/none", PATH=str(tmp_path)):
        assert notify_desktop("Notes") == "notify-send"
    assert said.read_text().splitlines() == [
        "--app-name",
        "okap",
        "--icon",
        "dialog-password",
        "--",
        "An app asks for access to your AI keys",
        "Notes is waiting for your decision in your okap vault.",
    ]


@contextmanager
def environment(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
