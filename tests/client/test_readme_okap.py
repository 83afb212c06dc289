"""The README's `okap` examples, run as written against a live vault: the worked `okap run`
with a real third-party tool (`llm`), then request, env, status and revoke. The person
approves on the device code the command prints (no browser here, as on a headless machine).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

from tests.client.conftest import PROVIDER_KEYS, cli_env, run_approving
from tests.support.fake_upstream import FakeUpstream
from tests.support.person import Person

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def section_blocks(heading: str) -> list[str]:
    """The ```sh blocks of one README section, as written."""
    section = README.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


RUN_EXAMPLE, OTHER_COMMANDS = section_blocks("The `okap` command")


def bin_env(live_url: str, tmp_path: Path) -> dict[str, str]:
    """The live vault, a fresh token cache, and `llm` keeping its files in the test."""
    env = cli_env(live_url, tmp_path / "config")
    env["LLM_USER_PATH"] = str(tmp_path / "llm")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_worked_okap_run_example(
    live_url: str, person: Person, tmp_path: Path, fake_upstream: FakeUpstream
) -> None:
    [line] = RUN_EXAMPLE.strip().splitlines()
    argv = shlex.split(line)
    assert argv[0] == "okap" and "llm" in argv
    done = run_approving(argv, bin_env(live_url, tmp_path), person)
    assert done.returncode == 0, done.stderr
    assert "enter code" in done.stderr  # no browser: a device code
    assert "Hello from the fake upstream." in done.stdout  # llm's answer, via the proxy
    sent = fake_upstream.requests_for("openai")[-1]
    assert sent.headers["authorization"] == f"Bearer {PROVIDER_KEYS['openai']}"
    assert "okap_" not in done.stdout + done.stderr


def test_the_other_commands_as_written(live_url: str, person: Person, tmp_path: Path) -> None:
    script = "set -eu\n" + OTHER_COMMANDS + 'echo "base=$OPENAI_BASE_URL"\nokap status\n'
    done = run_approving(["bash", "-c", script], bin_env(live_url, tmp_path), person)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("enter code") == 1  # asked once; env and status use the cache
    assert f"openai: base URL {live_url}/v1/openai" in done.stdout  # okap request
    assert f"base={live_url}/v1/openai" in done.stdout  # eval "$(okap env ...)"
    assert "monthly spend $2.00" in done.stdout
    assert re.search(r"^Revoked \S+ \(openai @ ", done.stdout, re.M)  # okap revoke --all
    assert done.stdout.splitlines()[-1].startswith("No cached tokens.")  # the status after
