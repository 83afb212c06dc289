"""The README's webhook receiver, run as written (its secret and port filled in): it
accepts the vault's signed deliveries, prints a threshold as the README says, and refuses
a forged one."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from okap_server.context import Vault
from okap_server.webhooks.events import emit
from tests.server.api.conftest import account
from tests.server.webhooks.conftest import register
from tests.support.live import free_port

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()


def receiver_source() -> str:
    section = README.split("\n## Webhooks\n", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```python\n(.*?)```", section, re.S)
    return block


def test_the_readme_receiver_verifies_and_prints(
    vault: Vault, api: httpx.Client, owner: tuple[str, str], tmp_path: Path
) -> None:
    port = free_port()
    endpoint = register(api, f"http://127.0.0.1:{port}/okap")
    source = receiver_source().replace('"whsec_..."', repr(endpoint["secret"]))
    script = tmp_path / "receiver.py"
    script.write_text(source.replace("9000", str(port)))
    process = subprocess.Popen(
        [sys.executable, "-u", str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                forged = httpx.post(
                    f"http://127.0.0.1:{port}/okap",
                    content=b'{"type":"grant.revoked"}',
                    headers={
                        "webhook-id": "msg_x",
                        "webhook-timestamp": str(int(time.time())),
                        "webhook-signature": "v1,AAAA",
                    },
                )
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.05)
        assert forged.status_code == 400
        data = {
            "scope": "grant",
            "grant_id": "grt_1",
            "app": {"client_id": "personal:nightly", "name": "nightly job"},
            "provider": "openai",
            "limit": "daily_spend",
            "period": "day:2026-12-03",
            "percent": 80,
            "limit_usd": 2.0,
            "spent_usd": 1.62,
        }
        with vault.session() as session:
            emit(session, "budget.threshold", account(vault, owner[0]), data)
            session.commit()
        deadline = time.monotonic() + 10
        while True:
            log = api.get(f"/webhooks/{endpoint['id']}/deliveries").json()["data"]
            if log and log[0]["status"] == "delivered" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert log[0]["status"] == "delivered" and log[0]["last_status"] == 204
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    assert "nightly job: 80% of daily_spend ($1.62)" in output
