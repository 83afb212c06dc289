from okap_client import OkapToken, Usage
from okap_client.display import export_lines, grant_lines, limits_text, unset_lines, usage_lines

VAULT = "http://127.0.0.1:8400"


def test_export_lines_for_each_shell():
    variables = {"OPENAI_API_KEY": "okap_abc", "OPENAI_BASE_URL": f"{VAULT}/v1/openai", "X": "it's"}
    assert export_lines(variables, "sh") == [
        "export OPENAI_API_KEY=okap_abc",
        f"export OPENAI_BASE_URL={VAULT}/v1/openai",
        "export X='it'\"'\"'s'",
    ]
    assert export_lines(variables, "fish")[0] == "set -gx OPENAI_API_KEY okap_abc;"
    assert export_lines(variables, "powershell")[2] == "$Env:X = 'it''s'"
    assert export_lines(variables, "dotenv")[0] == "OPENAI_API_KEY=okap_abc"


def test_limits_read_like_money_and_counts():
    text = limits_text(
        {"monthly_spend": 5, "requests_per_minute": 60, "daily_spend": None, "total_spend": 0.004}
    )
    assert text == "monthly spend $5.00, requests/minute 60, total spend $0.004"
    assert limits_text({}) == "none"


def test_grant_and_usage_lines():
    token = OkapToken(
        "okap_x",
        VAULT,
        [
            {
                "provider": "openai",
                "models": [],
                "capabilities": ["chat"],
                "limits": {"daily_spend": 1},
            }
        ],
    )
    lines = grant_lines(token)
    assert lines[0] == f"openai: base URL {VAULT}/v1/openai"
    assert "  models        all" in lines
    usage = Usage.from_body(
        {
            "active": True,
            "usage": {
                "openai": {
                    "spend": {
                        "day": {"used": 0.25, "limit": 1.0, "remaining": 0.75},
                        "month": {"used": 0.25, "limit": None},
                    },
                    "requests": {"minute": {"used": 3, "limit": 60, "remaining": 57}},
                }
            },
        }
    )
    assert usage_lines(usage) == [
        "used (openai): spend day $0.25 of $1.00; requests minute 3 of 60"
    ]
    assert usage.remaining("openai", "spend", "day") == 0.75
    assert usage.remaining("openai", "spend", "month") is None


def test_unset_lines_clear_a_variable_in_each_shell():
    assert unset_lines(["GEMINI_API_KEY"], "sh") == ["unset GEMINI_API_KEY"]
    assert unset_lines(["GEMINI_API_KEY"], "fish") == ["set -e GEMINI_API_KEY;"]
    assert unset_lines(["GEMINI_API_KEY"], "powershell") == [
        "Remove-Item Env:GEMINI_API_KEY -ErrorAction SilentlyContinue"
    ]
    assert unset_lines(["GEMINI_API_KEY"], "dotenv") == []  # a dotenv file cannot unset
