"""What one request can cost at most, and the body that keeps it so.

A spend limit holds only if the hold before forwarding bounds what the provider can bill.
The provider bills tokens, and a request's tokens are not its bytes:

- every answer it generates is billed: ``n`` chat choices, ``best_of`` completions for each
  prompt of a list, Gemini's ``candidateCount``, ``n`` images; so the output bound is the
  per-answer cap times the answers, and ``tokens_per_request`` caps their sum;
- every field an upstream may read as the output cap is set when the vault sets one
  (``max_tokens`` and ``max_completion_tokens`` both, when both are named);
- an image is billed by its pixels, and a file id, an earlier response, a conversation, a
  cache, a PDF, audio or video stand for input the body does not hold: see
  :mod:`okap_server.proxy.ijson` and the settings ``proxy_image_input_tokens`` and
  ``proxy_reference_input_tokens``;
- what it cannot bound (hosted tools billed per call, a dearer service tier) is refused
  under a spend limit (:class:`~okap_server.proxy.errors.UnboundedCost`).

The body is forwarded as the vault read it, or re-serialised from what it read when it set
a cap: never bytes it did not check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from okap_server.grants.view import Limits
from okap_server.proxy import errors
from okap_server.proxy.ijson import JsonBody
from okap_server.proxy.providers.base import Adapter, AmbiguousMember, Demand, Route
from okap_server.settings import Settings

# Tokens of framing a provider adds around a prompt (roles, templates), on top of the body.
PROMPT_OVERHEAD_TOKENS = 64


@dataclass
class Bounds:
    """The body to forward and its token bounds, with what made them large."""

    body: bytes
    input_tokens: int
    output_tokens: int = 0
    injected_usage: bool = False
    reasons: list[str] = field(default_factory=list)
    # The output cap of each answer when the vault set it (lower than asked, or none asked):
    # the answer may stop short because of it, so the response says so (SPEC.md).
    capped_output: int | None = None


def bound_request(
    adapter: Adapter,
    route: Route,
    body_json: dict[str, Any] | None,
    body: bytes,
    multipart: bool,
    limits: Limits,
    settings: Settings,
) -> Bounds:
    """Bound a request's tokens, setting its output cap where it must; raises the refusal
    when it cannot be bounded under the grant's limits."""
    bounds = Bounds(body, len(body) + PROMPT_OVERHEAD_TOKENS)
    if not route.billable:
        return bounds
    is_json = body_json is not None and not multipart
    try:
        if is_json and body_json is not None:
            demand = adapter.demand(route, body_json)
        elif multipart and body_json is not None:
            demand = adapter.multipart_demand(route, body, body_json)
        elif body:
            raise errors.InvalidJson("The request body must be a JSON object.")
        else:
            demand = Demand()
        if demand.unbounded is not None and limits.spend_limited:
            raise errors.UnboundedCost(
                f"This request uses {demand.unbounded}, whose cost the vault cannot bound in "
                "advance, so this okap grant's spend limit does not allow it."
            )
        output_each = demand.output_each
        if is_json and body_json is not None and route.max_output_fields:
            output_each, changed = _cap_output(
                adapter, route, body_json, demand.answers, limits, settings
            )
            if route.stream:
                bounds.injected_usage = adapter.prepare_stream(body_json)
            if changed:
                bounds.capped_output = output_each
            if changed or bounds.injected_usage:
                bounds.body = json.dumps(body_json, separators=(",", ":")).encode()
        elif not output_each and route.capability != "embeddings":
            # No cap the vault can read or set (audio, multipart): assume the default.
            output_each = settings.default_max_output_tokens
    except AmbiguousMember as exc:
        raise errors.InvalidParameter(str(exc)) from None
    bounds.output_tokens = demand.answers * output_each + demand.extra_output
    if demand.answers > 1:
        bounds.reasons.append(f"{demand.answers} answers of up to {output_each:,} tokens each")
    facts = body_json.facts if isinstance(body_json, JsonBody) else None
    held_elsewhere = demand.references + (facts.opaque if facts else [])
    images = facts.images if facts else 0
    ceiling = settings.proxy_reference_input_tokens
    if held_elsewhere:
        unseen = ceiling
        named = ", ".join(dict.fromkeys(held_elsewhere))
        bounds.reasons.append(f"input the vault cannot size ({named}) as {ceiling:,} tokens")
    else:
        unseen = min(images * settings.proxy_image_input_tokens, ceiling)
        if images:
            bounds.reasons.append(f"{images} image(s) counted as {unseen:,} tokens")
    bounds.input_tokens = len(bounds.body) + PROMPT_OVERHEAD_TOKENS + demand.extra_input + unseen
    return bounds


def _cap_output(
    adapter: Adapter,
    route: Route,
    body: dict[str, Any],
    answers: int,
    limits: Limits,
    settings: Settings,
) -> tuple[int, bool]:
    """The output cap of each answer, set in the body where the grant needs one; and
    whether the body changed."""
    wanted = adapter.requested_max_output(route, body)
    cap = limits.tokens_per_request
    if cap is not None:
        each = cap // answers  # tokens_per_request caps the answers' sum
        if each < 1:
            raise errors.TokensPerRequestExceeded(
                f"This request asks for {answers} answers, more than this okap grant's "
                f"limit of {cap} output tokens per request allows."
            )
        if wanted is None or wanted > each:
            adapter.set_max_output(route, body, each)
            return each, True
    if wanted is None and limits.spend_limited:
        wanted = settings.default_max_output_tokens
        adapter.set_max_output(route, body, wanted)
        return wanted, True
    return wanted or 0, False
