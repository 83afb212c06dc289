"""Every cookie the vault sets, named and scoped by one policy.

Under https every cookie carries the ``__Host-`` prefix (RFC 6265bis §4.1.3.2): Secure,
``Path=/`` and no ``Domain``, so no other host, subdomain or plain-http page can set or
shadow it. Under plain http (a vault on this machine) the names are bare, because not every
browser accepts Secure cookies from ``http://localhost``; there the pages' own host name
(``Settings.effective_page_url``, never a loopback IP literal) keeps apps' loopback
redirect targets from ever receiving them (``web/page_origin.py``).
"""

from __future__ import annotations

from typing import Literal

from fastapi import Response

from okap_server.settings import Settings

SESSION = "okap_session"
PRESESSION = "okap_presession"
SETUP = "okap_setup"
DEVICE = "okap_device"  # a known browser, for the sign-in throttle (``signin_throttle.py``)
ALL = (SESSION, PRESESSION, SETUP, DEVICE)
HOST_PREFIX = "__Host-"


def is_secure(settings: Settings) -> bool:
    return settings.effective_page_url.startswith("https://")


def cookie_name(settings: Settings, base: str) -> str:
    """``__Host-<base>`` when the pages are served over https, else ``<base>``."""
    return HOST_PREFIX + base if is_secure(settings) else base


def set_cookie(
    response: Response,
    settings: Settings,
    base: str,
    value: str,
    *,
    max_age: int,
    samesite: Literal["lax", "strict"] = "lax",
) -> None:
    """HttpOnly, Path=/, no Domain (host-only), Secure under https."""
    response.set_cookie(
        cookie_name(settings, base),
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite=samesite,
        secure=is_secure(settings),
    )


def expire_cookie(response: Response, settings: Settings, base: str) -> None:
    response.delete_cookie(
        cookie_name(settings, base), path="/", secure=is_secure(settings), httponly=True
    )
