"""The ``okap`` command line as a person uses it, against a live vault."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.client.conftest import OKAP, PROVIDER_KEYS, cli_env, run_approving

# A child that calls the proxy with the OpenAI SDK, reading only the usual variables.
CHILD = """
import json, os
from openai import OpenAI
chat = OpenAI().chat.completions
reply = chat.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
print(json.dumps({
    "base_url": os.environ["OPENAI_BASE_URL"],
    "text": reply.choices[0].message.content,
    "key_is_okap": os.environ["OPENAI_API_KEY"].startswith("okap_"),
}))
"""


def okap(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OKAP, *args], env=env, capture_output=True, text=True, timeout=60)


def test_request_then_env_run_status_and_revoke(
    live_url, page_url, person, tmp_path, fake_upstream
):
    env = cli_env(live_url, tmp_path / "config")
    asked = ["openai", "--model", "gpt-4o-mini", "--model", "gpt-4.1", "--monthly-limit", "5"]
    done = run_approving([OKAP, "request", *asked], env, person, models=["gpt-4o-mini"])
    assert done.returncode == 0, done.stderr
    assert f"Open {page_url}/device?user_code=" in done.stderr  # a page: on localhost
    assert f"openai: base URL {live_url}/v1/openai" in done.stdout
    assert "models        gpt-4o-mini\n" in done.stdout  # narrowed by the person
    assert "monthly spend $5.00" in done.stdout
    assert "okap_" not in done.stdout + done.stderr
    cache_file = tmp_path / "config" / "okap" / "tokens.json"
    assert oct(cache_file.stat().st_mode & 0o777) == "0o600"

    # Same request again: answered from the cache, no second consent.
    exported = okap("env", *asked, env=env)
    assert exported.returncode == 0, exported.stderr
    assert "enter code" not in exported.stderr
    lines = dict(
        line.removeprefix("export ").split("=", 1) for line in exported.stdout.splitlines()
    )
    assert lines["OPENAI_BASE_URL"] == f"{live_url}/v1/openai"
    assert lines["OPENAI_API_KEY"].startswith("okap_")

    ran = okap("run", *asked, "--", sys.executable, "-c", CHILD, env=env)
    assert ran.returncode == 0, ran.stderr
    child = json.loads(ran.stdout)
    assert child == {
        "base_url": f"{live_url}/v1/openai",
        "text": "Hello from the fake upstream.",
        "key_is_okap": True,
    }
    sent = fake_upstream.requests_for("openai")[-1]
    assert PROVIDER_KEYS["openai"] in sent.headers["authorization"]

    status = okap("status", env=env)
    assert status.returncode == 0, status.stderr
    assert "okap-cli @ " + live_url in status.stdout
    # The monthly limit asked for, and the defaults for the limits it did not name.
    assert re.search(r"used \(openai\): .*spend month \$[0-9.]+ of \$5\.00", status.stdout)
    assert re.search(r"spend day \$[0-9.]+ of \$1\.00", status.stdout)
    assert "spend month $" in status.stdout
    entry_id = status.stdout.split()[0]

    revoked = okap("revoke", entry_id, env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert f"Revoked {entry_id}" in revoked.stdout
    assert "No cached tokens" in okap("status", env=env).stdout


def test_run_passes_the_childs_exit_status(live_url, person, tmp_path):
    env = cli_env(live_url, tmp_path / "config")
    done = run_approving(
        [
            OKAP,
            "run",
            "anthropic",
            "--",
            sys.executable,
            "-c",
            "import os, sys; print(os.environ['ANTHROPIC_BASE_URL']); sys.exit(7)",
        ],
        env,
        person,
    )
    assert done.returncode == 7
    assert done.stdout.strip() == f"{live_url}/v1/anthropic"


def test_denial_is_a_clear_message(live_url, person, tmp_path):
    env = cli_env(live_url, tmp_path / "config")
    done = run_approving([OKAP, "env", "openai"], env, person, deny=True)
    assert done.returncode == 4
    assert f"okap: access denied by {live_url}" in done.stderr
    assert done.stdout == ""


def test_a_vault_that_is_down_is_a_clear_message(tmp_path):
    env = cli_env("http://127.0.0.1:9", tmp_path / "config")
    done = okap("run", "openai", "--", "true", env=env)
    assert done.returncode == 3
    assert "cannot reach the vault at http://127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr


# Three SDKs configured from the environment alone, as an existing tool would be.
SDKS_FROM_ENV = """
import anthropic, openai
from google import genai
gpt = openai.OpenAI().chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
claude = anthropic.Anthropic().messages.create(
    model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
google = genai.Client()  # keep a reference: genai closes its HTTP client when collected
gemini = google.models.generate_content(model="gemini-2.5-flash", contents="hi")
print(gpt.choices[0].message.content)
print(claude.content[0].text)
print(gemini.text)
"""


def test_run_configures_each_providers_own_sdk_through_its_variables(
    live_url, person, tmp_path, fake_upstream
):
    env = cli_env(live_url, tmp_path / "config")
    done = run_approving(
        [OKAP, "run", "openai,anthropic,google", "--", sys.executable, "-c", SDKS_FROM_ENV],
        env,
        person,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["Hello from the fake upstream."] * 3
    for provider in ("openai", "anthropic", "google"):
        [sent] = fake_upstream.requests_for(provider)
        assert PROVIDER_KEYS[provider] in str(sent.headers)


# A child using google-genai the usual way: the key and base URL from the environment.
GENAI_CHILD = """
import os
from google import genai
client = genai.Client()
reply = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
print(reply.text, "GEMINI_API_KEY" in os.environ)
"""


def test_google_gets_one_key_variable_and_genai_does_not_warn(live_url, person, tmp_path):
    env = cli_env(live_url, tmp_path / "config")
    env["GEMINI_API_KEY"] = "AIza-a-real-key-left-in-the-shell"
    done = run_approving([OKAP, "env", "google"], env, person)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "unset GEMINI_API_KEY"
    names = [line.removeprefix("export ").split("=")[0] for line in lines[1:]]
    assert names == ["GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL"]

    ran = okap("run", "google", "--", sys.executable, "-c", GENAI_CHILD, env=env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().endswith("False")  # the real key did not reach the child
    assert "Both GOOGLE_API_KEY and GEMINI_API_KEY are set" not in ran.stderr
