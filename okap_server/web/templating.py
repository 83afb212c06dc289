"""Finding and configuring the Jinja templates, in a checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

import jinja2

from okap_server.dashboard.formatting import plural, usd
from okap_server.settings import Settings

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def templates_dir() -> Path:
    """``okap_server/templates`` in a wheel; the top-level ``templates/`` in a checkout."""
    for candidate in (_PACKAGE_DIR / "templates", _PACKAGE_DIR.parent / "templates"):
        if (candidate / "base.html").is_file():
            return candidate
    raise FileNotFoundError("okap templates not found; the installation is incomplete")


def static_dir() -> Path:
    return templates_dir() / "static"


def make_templates(settings: Settings) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["public_url"] = settings.effective_public_url
    # The one way a page writes money: ``$5.00``, ``$1,234.50``, ``<$0.01`` for a fraction
    # of a cent (never a misleading ``$0.00``), ``no limit`` for None.
    env.filters["money"] = usd
    # ``{{ n | plural("day") }}``: ``1 day``, ``90 days``, ``1,000 days``.
    env.filters["plural"] = plural
    return env
