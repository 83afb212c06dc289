import threading

import httpx

from okap_client import LoopbackListener


def test_the_redirect_is_received_and_the_person_told_to_close_the_tab():
    with LoopbackListener() as listener:
        assert listener.redirect_uri.startswith("http://127.0.0.1:")
        assert listener.redirect_uri.endswith("/callback")
        # RFC 8252 §8.3: a loopback IP literal, never every interface, never "localhost".
        assert listener._server.server_address[0] == "127.0.0.1"
        assert (
            httpx.get(listener.redirect_uri.replace("/callback", "/favicon.ico")).status_code == 404
        )
        assert listener.answer is None
        page = httpx.get(listener.redirect_uri, params={"code": "abc", "state": "s"})
        assert page.status_code == 200
        assert "You can close this tab" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert listener.wait(1) == {"code": "abc", "state": "s"}


def test_a_denial_is_shown_and_delivered():
    with LoopbackListener() as listener:
        page = httpx.get(
            listener.redirect_uri, params={"error": "access_denied", "error_description": "<no>"}
        )
        assert "Access not granted" in page.text
        assert "&lt;no&gt;" in page.text
        assert listener.wait(1)["error"] == "access_denied"


def test_wait_times_out_without_a_redirect():
    with LoopbackListener() as listener:
        assert listener.wait(0.05) is None


def test_each_listener_gets_its_own_port():
    with LoopbackListener() as a, LoopbackListener() as b:
        assert a.port != b.port
    assert threading.active_count() >= 1
