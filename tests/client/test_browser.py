import pytest

from okap_client.browser import browser_available


@pytest.mark.parametrize(
    ("env", "platform", "expected"),
    [
        ({"DISPLAY": ":0"}, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({}, "linux", False),
        ({"DISPLAY": ":0", "CI": "true"}, "linux", False),
        ({"SSH_CONNECTION": "1.2.3.4 5 6.7.8.9 22"}, "linux", False),
        ({"SSH_CONNECTION": "1.2.3.4 5 6.7.8.9 22", "DISPLAY": "localhost:10"}, "linux", True),
        ({}, "darwin", True),
        ({"SSH_TTY": "/dev/pts/1"}, "darwin", False),
        ({"DISPLAY": ":0", "OKAP_NO_BROWSER": "1"}, "linux", False),
    ],
)
def test_headless_machines_get_the_device_flow(env, platform, expected):
    assert browser_available(env, platform) is expected
