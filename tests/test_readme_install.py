"""The README's "Installing the SDK in an app" commands, run as written in a fresh HOME:
from a checkout, and from a built wheel. Each gives a working SDK and `okap` command, and
pulls in nothing of the server (the SDK needs only httpx)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
pytestmark = pytest.mark.slow

SECTION = README.split("\n## Installing the SDK in an app\n", 1)[1].split("\n## ", 1)[0]
FROM_CHECKOUT, FROM_WHEEL = re.findall(r"```sh\n(.*?)```", SECTION, re.S)
CHECK = (
    "import importlib.util, okap_client; "
    "from okap_client import OkapClient, AsyncOkapClient; "
    "print(okap_client.__version__, importlib.util.find_spec('fastapi') is None)"
)


def run_block(block: str, home: Path, path_first: Path | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["HOME"] = str(home)
    # Whatever `python3`/`pip` the reader has; here the suite's interpreter's, or a fresh venv.
    first = path_first or Path(sys.executable).parent
    env["PATH"] = f"{first}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-euc", block], cwd=ROOT, env=env, capture_output=True, text=True, timeout=540
    )
    assert done.returncode == 0, f"{block}\n{done.stdout}\n{done.stderr}"


def check_app_env(venv: Path) -> None:
    checked = subprocess.run(
        [str(venv / "bin" / "python"), "-c", CHECK], capture_output=True, text=True, timeout=60
    )
    assert checked.stdout.split() == ["0.1.0", "True"], checked.stderr
    okap = subprocess.run(
        [str(venv / "bin" / "okap"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert okap.returncode == 0 and "0.1.0" in okap.stdout + okap.stderr


def test_install_from_a_checkout_as_written(tmp_path: Path) -> None:
    run_block(FROM_CHECKOUT, tmp_path)
    check_app_env(tmp_path / "my-app" / ".venv")


def test_install_from_a_built_wheel_as_written(tmp_path: Path) -> None:
    app = tmp_path / "app-venv"  # the app's own environment, active while the reader types
    subprocess.run([sys.executable, "-m", "venv", str(app)], check=True, timeout=120)
    run_block(FROM_WHEEL, tmp_path, path_first=app / "bin")
    assert (tmp_path / "okap-dist" / "okap_vault-0.1.0-py3-none-any.whl").is_file()
    check_app_env(app)
