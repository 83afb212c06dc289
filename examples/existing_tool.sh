#!/bin/sh
# An existing tool that reads OPENAI_API_KEY and OPENAI_BASE_URL, unchanged, gets scoped
# access through `okap run`: it never sees the real key, and the vault enforces the limits.
#
#   OKAP_VAULT_URL=http://127.0.0.1:8400 sh examples/existing_tool.sh
set -eu
PYTHON="${PYTHON:-python3}"

# The "existing tool": plain OpenAI SDK code that knows nothing about okap.
TOOL='
from openai import OpenAI
reply = OpenAI().chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}]
)
print(reply.choices[0].message.content)
'

okap run openai --model gpt-4o-mini --monthly-limit 1 --reason "Run an existing tool" \
    -- "$PYTHON" -c "$TOOL"

# The same, for a shell session:  eval "$(okap env openai --model gpt-4o-mini)"
