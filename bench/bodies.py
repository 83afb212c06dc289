"""The request bodies every target receives: an OpenAI chat completion, plain and streamed."""

from __future__ import annotations

MESSAGES = '[{"role":"user","content":"Say hello to the benchmark."}]'
BODIES = {
    "json": f'{{"model":"gpt-4o-mini","messages":{MESSAGES},"max_tokens":64}}',
    "stream": f'{{"model":"gpt-4o-mini","messages":{MESSAGES},"max_tokens":64,"stream":true}}',
}
