"""A person at the vault's pages, over real HTTP, through the real forms.

``Person`` signs in, opens consent pages, narrows what an app asked for, and clicks
Approve or Deny, exactly as a browser without JavaScript would submit those forms (it
parses the HTML and posts what the page offers, CSRF token included). Tests on any side of
the product (SDK, CLI, dashboard) use it to play the human::

    person = Person(live_url, "alice", "correct horse battery")
    decision = person.approve(consent_url, models=["gpt-4o-mini"], limits={"daily_spend": 1})
    decision.location            # code flow: the app's redirect_uri?code=...&state=...&iss=...
    person.deny(consent_url)
    person.approve_device("WDJB-MJHT")
    person.pending()             # consent URLs waiting for this account
    person.approve_next_pending(timeout=10)   # wait for a request made elsewhere, approve it

Narrowing arguments apply to every provider entry, or pass a dict keyed by provider:
``models`` / ``capabilities`` (lists), ``limits`` (``{"daily_spend": 1.0}``), ``expires``
(datetime or ``YYYY-MM-DDTHH:MM`` UTC), ``key_id`` (which stored key backs the grant),
``new_keys`` (``{"openai": "sk-..."}``, stored via the consent page's key field when the
person has no key for that provider yet), ``drop`` (providers to leave out).
A page that refuses (error, 4xx) raises ``PersonError`` with the page's message, unless
``check=False``, which returns the ``Decision`` to assert on.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx


class PersonError(AssertionError):
    """The page did not do what the person wanted; the message is what the page said."""


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)  # what a browser would send
    options: dict[str, list[str]] = field(default_factory=dict)  # checkbox/select choices


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.links: list[tuple[str, str]] = []  # (class, href)
        self.alerts: list[str] = []
        self.h1: list[str] = []
        self._select: str | None = None
        self._capture: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif tag == "a":
            self.links.append((a.get("class", ""), a.get("href", "")))
        elif tag == "input" and self.forms and a.get("name"):
            form, name, kind = self.forms[-1], a["name"], a.get("type", "text")
            if kind in ("checkbox", "radio"):
                form.options.setdefault(name, []).append(a.get("value", "on"))
                if "checked" in a:
                    form.fields.append((name, a.get("value", "on")))
            elif kind not in ("submit", "button"):
                form.fields.append((name, a.get("value", "")))
        elif tag == "select" and self.forms:
            self._select = a.get("name")
        elif tag == "option" and self._select and self.forms:
            form = self.forms[-1]
            form.options.setdefault(self._select, []).append(a.get("value", ""))
            if "selected" in a or not any(n == self._select for n, _ in form.fields):
                form.fields = [(n, v) for n, v in form.fields if n != self._select]
                form.fields.append((self._select, a.get("value", "")))
        elif (tag == "p" and a.get("role") == "alert") or tag == "h1":
            self._capture = []
            (self.alerts if tag == "p" else self.h1).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag in ("p", "h1") and self._capture is not None:
            target = self.h1 if tag == "h1" else self.alerts
            if target:
                target[-1] = " ".join("".join(self._capture).split())
            self._capture = None

    def handle_data(self, data: str) -> None:
        if self._capture is not None:
            self._capture.append(data)


def parse_page(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def page_message(html: str) -> str:
    page = parse_page(html)
    return " / ".join(x for x in [*page.h1, *page.alerts] if x) or html[:200]


@dataclass
class Decision:
    """What happened after Approve/Deny: the redirect (code flow) or the page shown."""

    status_code: int
    location: str | None
    page: str

    @property
    def message(self) -> str:
        return page_message(self.page)


class Person:
    """Someone with an account on the vault, using its pages through a cookie jar."""

    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 15.0):
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.client = httpx.Client(base_url=self.base_url, follow_redirects=False, timeout=timeout)
        self.signed_in = False

    def __enter__(self) -> Person:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    # -- pages ---------------------------------------------------------------------------
    def _path(self, url: str) -> str:
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "") if parts.scheme else url

    def form_of(self, html: str, action_prefix: str) -> Form:
        for form in parse_page(html).forms:
            if form.action.startswith(action_prefix):
                return form
        raise PersonError(f"no form for {action_prefix} on the page: {page_message(html)}")

    def _moved_to_page_host(self, response: httpx.Response) -> bool:
        """Follow the vault to the host of its pages (``Settings.effective_page_url``): a
        vault reached on ``127.0.0.1`` serves its pages on ``localhost`` only. Rebases this
        person's browser there, as a browser follows the 307; True if it moved."""
        if response.status_code != 307:
            return False
        target = urlsplit(urljoin(str(response.request.url), response.headers["location"]))
        here = urlsplit(self.base_url)
        if (target.scheme, target.netloc) == (here.scheme, here.netloc):
            return False
        self.base_url = f"{target.scheme}://{target.netloc}"
        self.client.base_url = httpx.URL(self.base_url)
        return True

    def sign_in(self) -> None:
        page = self.client.get("/signin")
        if self._moved_to_page_host(page):
            page = self.client.get("/signin")
        if page.status_code == 303:  # this browser is signed in already
            self.signed_in = True
            return
        form = self.form_of(page.text, "/signin")
        data = dict(form.fields) | {"username": self.username, "password": self.password}
        response = self.client.post("/signin", data=data)
        if response.status_code != 303:
            raise PersonError(
                f"sign-in failed ({response.status_code}): {page_message(response.text)}"
            )
        self.signed_in = True

    def sign_out(self) -> None:
        """POST /signout with this session's CSRF token (taken from the /device form)."""
        page = self.open("/device")
        self.client.post("/signout", data={"csrf_token": self._csrf(page.text)})
        self.signed_in = False

    def _csrf(self, html: str) -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', html)
        return match.group(1) if match else ""

    def open(self, url: str) -> httpx.Response:
        """GET a page of the vault, signing in first when sent to the sign-in page."""
        if not self.signed_in:
            self.sign_in()
        path = self._path(url)
        for _ in range(5):
            response = self.client.get(path)
            if self._moved_to_page_host(response):
                continue
            if response.status_code in (302, 303, 307):
                location = response.headers["location"]
                if urlsplit(location).path == "/signin":
                    self.sign_in()
                    continue
                if (
                    urlsplit(urljoin(self.base_url + "/", location)).netloc
                    != urlsplit(self.base_url).netloc
                ):
                    return response
                path = self._path(urljoin(self.base_url + path, location))
                continue
            return response
        raise PersonError(f"too many redirects opening {url}")

    # -- deciding ------------------------------------------------------------------------
    def approve(self, consent_url: str, *, check: bool = True, **narrowing: Any) -> Decision:
        return self._decide(consent_url, "approve", check=check, **narrowing)

    def deny(self, consent_url: str, *, check: bool = True) -> Decision:
        return self._decide(consent_url, "deny", check=check)

    def _decide(
        self, consent_url: str, decision: str, *, check: bool, **narrowing: Any
    ) -> Decision:
        page = self.open(consent_url)
        if page.status_code != 200:
            if check:
                raise PersonError(f"consent page {page.status_code}: {page_message(page.text)}")
            return Decision(page.status_code, page.headers.get("location"), page.text)
        form = self.form_of(page.text, "/consent/")
        fields = apply_narrowing(form, **narrowing) if decision == "approve" else list(form.fields)
        response = self.client.post(form.action, data=_multi(fields + [("decision", decision)]))
        result = Decision(response.status_code, response.headers.get("location"), response.text)
        if check and response.status_code >= 400:
            raise PersonError(f"{decision} refused ({response.status_code}): {result.message}")
        return result

    def enter_user_code(self, user_code: str) -> str:
        """Type a device code at /device; returns the consent URL it leads to."""
        page = self.open("/device")
        form = self.form_of(page.text, "/device")
        data = dict(form.fields) | {"user_code": user_code}
        response = self.client.post("/device", data=data)
        if response.status_code != 303:
            raise PersonError(f"device code refused: {page_message(response.text)}")
        return self.base_url + response.headers["location"]

    def approve_device(self, user_code: str, **narrowing: Any) -> Decision:
        return self.approve(self.enter_user_code(user_code), **narrowing)

    def deny_device(self, user_code: str) -> Decision:
        return self.deny(self.enter_user_code(user_code))

    def pending(self) -> list[str]:
        """Consent URLs of requests this account may decide, newest first."""
        page = self.open("/consent")
        return [
            self.base_url + href
            for cls, href in parse_page(page.text).links
            if "pending-request" in cls.split()
        ]

    def wait_for_pending(self, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            waiting = self.pending()
            if waiting:
                return waiting[0]
            if time.monotonic() > deadline:
                raise PersonError(f"no request waited for {self.username} within {timeout} s")
            time.sleep(0.1)

    def approve_next_pending(self, timeout: float = 10.0, **narrowing: Any) -> Decision:
        return self.approve(self.wait_for_pending(timeout), **narrowing)

    def deny_next_pending(self, timeout: float = 10.0) -> Decision:
        return self.deny(self.wait_for_pending(timeout))


def _multi(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return data


def _for(value: Any, provider: str, providers: list[str]) -> Any:
    """A per-provider dict, or one value for every provider."""
    if isinstance(value, dict) and value and set(value) <= set(providers):
        return value.get(provider)
    return value


def apply_narrowing(
    form: Form,
    *,
    models: Any = None,
    capabilities: Any = None,
    limits: Any = None,
    expires: Any = None,
    key_id: Any = None,
    new_keys: dict[str, str] | None = None,
    drop: list[str] | None = None,
    allow_delegation: bool | None = None,
) -> list[tuple[str, str]]:
    fields = list(form.fields)
    if allow_delegation is False:  # untick "Let this app hand narrower tokens on"
        fields = [(n, v) for n, v in fields if n != "allow_delegation"]
    entries = {v: n.split(".")[0] for n, v in fields if n.endswith(".provider")}
    providers = list(entries)

    def replace(name: str, values: list[str]) -> None:
        nonlocal fields
        fields = [(n, v) for n, v in fields if n != name] + [(name, v) for v in values]

    for provider, prefix in entries.items():
        chosen = _for(models, provider, providers)
        if chosen is not None:
            if f"{prefix}.models" in form.options:
                replace(f"{prefix}.models", list(chosen))
            else:
                replace(f"{prefix}.models_text", [",".join(chosen)])
        caps = _for(capabilities, provider, providers)
        if caps is not None:
            replace(f"{prefix}.capabilities", list(caps))
        lim = _for(limits, provider, providers) if limits else None
        if lim:
            for name, amount in lim.items():
                replace(f"{prefix}.limit.{name}", ["" if amount is None else str(amount)])
        when = _for(expires, provider, providers)
        if when is not None:
            text = when.strftime("%Y-%m-%dT%H:%M") if isinstance(when, datetime) else str(when)
            replace(f"{prefix}.expires", [text])
        key = _for(key_id, provider, providers)
        if key is not None:
            replace(f"{prefix}.key_id", [key])
        if new_keys and provider in new_keys:
            replace(f"{prefix}.new_key", [new_keys[provider]])
        if drop and provider in drop:
            replace(f"{prefix}.include", [])
    return fields
