import pytest

from okap_client import (
    AccessDenied,
    AuthorizationExpired,
    InvalidRequest,
    OkapError,
    TokenRevoked,
    VaultUnreachable,
)
from okap_client.errors import error_from_body


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("access_denied", AccessDenied),
        ("expired_token", AuthorizationExpired),
        ("invalid_grant", AuthorizationExpired),
        ("invalid_request", InvalidRequest),
        ("invalid_authorization_details", InvalidRequest),
        ("invalid_client", InvalidRequest),
        ("invalid_token", TokenRevoked),
        ("temporarily_unavailable", OkapError),
    ],
)
def test_each_protocol_code_has_its_class(code, cls):
    error = error_from_body(400, {"error": code, "error_description": "because"})
    assert type(error) is cls
    assert error.error == code
    assert error.description == "because"
    assert str(error) == f"{code}: because"


def test_non_protocol_answers():
    assert isinstance(error_from_body(502, None), VaultUnreachable)
    assert isinstance(error_from_body(401, None), TokenRevoked)
    assert type(error_from_body(404, "nope")) is OkapError
