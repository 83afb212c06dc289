"""The import layering of pyproject.toml holds: adapters -> use cases -> cores -> grants ->
storage, the protocol core and the proxy never import each other, the dashboard and the
management API share use cases but not each other, and the SDK never imports the server.
CI runs ``lint-imports`` too; this keeps a plain pytest run honest."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = [
    sys.executable,
    "-c",
    "from importlinter.cli import lint_imports_command; lint_imports_command()",
]


def _lint(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LINT, "--no-cache", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_the_import_contracts_are_kept() -> None:
    result = _lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


def test_a_core_importing_the_other_core_breaks_the_contracts(tmp_path: Path) -> None:
    """The checker sees real imports: a copy of the packages where the proxy imports the
    authorization core is refused, naming the import."""
    for package in ("okap_server", "okap_client"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bad = tmp_path / "okap_server" / "proxy" / "paths.py"
    bad.write_text(bad.read_text() + "\nfrom okap_server.authorization import errors as _e\n")
    result = _lint(cwd=tmp_path)
    assert result.returncode != 0
    assert "okap_server.proxy.paths -> okap_server.authorization.errors" in result.stdout
