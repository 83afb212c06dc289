"""What every provider adapter knows, and the parts the three API families share.

A provider is an adapter class (one per API family: ``openai``, ``anthropic``, ``google``)
plus a row of data (:class:`~okap_server.catalog.ProviderRow`). The adapter
knows where the client puts its token, which endpoint is which capability, where the model
and the usage are, and the provider's native error shape; the row says where the upstream
is and how the real key is sent to it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# Re-exported: adapters, settlement and the journal import it from here.
from okap_server.prices.usage import Usage as Usage
from okap_server.proxy.providers.stored import Collection as Collection
from okap_server.proxy.providers.stored import owned_ids as owned_ids
from okap_server.proxy.providers.stored import references_in

# Every header or query parameter through which any released SDK sends its credential.
# All of them are removed before forwarding, whatever the family.
CLIENT_CREDENTIAL_HEADERS: frozenset[str] = frozenset(
    {"authorization", "x-api-key", "x-goog-api-key", "api-key", "proxy-authorization"}
)
CLIENT_CREDENTIAL_QUERY: frozenset[str] = frozenset({"key"})


@dataclass(frozen=True)
class Route:
    """What one request is, in the grant's terms.

    ``capability`` None with ``always_allowed`` means an endpoint every grant may use
    (model listing); None without it means an endpoint no capability names: refused.
    ``billable`` means the request is priced (its worst case held); ``unbounded`` names an
    endpoint that costs money but whose cost the vault cannot bound in advance (a batch,
    cache storage by the hour, audio by the second): refused under a spend limit.
    """

    capability: str | None
    model: str | None = None
    billable: bool = False
    stream: bool = False
    always_allowed: bool = False
    # Body fields naming the output cap, in order of preference.
    max_output_fields: tuple[str, ...] = ()
    # Stored objects (see ``Collection``): the one this request reads or changes by id, only
    # if its grant owns it; a listing of the organisation's objects (refused); the fields of
    # the answer that name objects its grant owns from now on.
    object_id: str | None = None
    listing: bool = False
    owns: tuple[str, ...] = ()
    unbounded: str | None = None
    # Every further model the request names (the requests of a batch).
    models: tuple[str, ...] = ()
    # The request's models are where the vault does not read them (a batch's input file).
    models_unseen: bool = False

    @property
    def costly(self) -> bool:
        """It can cost money: priced, or refused under a spend limit."""
        return self.billable or self.unbounded is not None


@dataclass
class Demand:
    """What a billable request asks of the provider beyond its own bytes, as the adapter
    reads it from the body: the hold multiplies and adds these (SPEC "Spend limits")."""

    # Answers generated, each up to the output cap: n, best_of, candidateCount, prompts.
    answers: int = 1
    # Output tokens of each answer when no field caps it (an image's tokens).
    output_each: int = 0
    # Input tokens the body's bytes do not show: tool prompts the provider adds.
    extra_input: int = 0
    # Output tokens beyond the answers (a prediction's rejected tokens are billed as output).
    extra_output: int = 0
    # Inputs held elsewhere, named at the top level (previous_response_id, cachedContent).
    references: list[str] = field(default_factory=list)
    # A feature whose cost the vault cannot bound (hosted tools, a dearer service tier).
    unbounded: str | None = None


# Integers beyond a double's exact range read differently in JavaScript (RFC 7493 §2.2).
MAX_SAFE_INTEGER = 2**53 - 1


def read_count(value: Any) -> int | None:
    """A count as any provider's reader may take it (JSON integer, integral number, or the
    decimal string protobuf's JSON reader accepts for an integer); None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.isascii() and value.strip().lstrip("+-").isdigit():
        number = int(value.strip())
    else:
        return None
    return number if -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER else None


class AmbiguousMember(ValueError):
    """A body member name that a lenient reader could take for one the vault reads."""


def fold(name: str) -> str:
    """A name as the most lenient reader matches it: Go's ``encoding/json`` ignores case
    (with Unicode folding: the Kelvin sign is a ``k``), and protobuf's JSON reader takes a
    field's snake_case name as well as its lowerCamelCase one."""
    return name.replace("_", "").casefold()


def members(obj: Mapping[str, Any], names: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    """The members the vault reads of ``obj``, by canonical name, exactly as every upstream
    reads them. ``names`` maps a name's fold to its accepted spellings. A member spelled in
    a way some reader would take for a watched name while the vault would not (``Model``,
    ``MAX_TOKENS``), or two accepted spellings at once, raise :class:`AmbiguousMember`."""
    found: dict[str, Any] = {}
    for key, value in obj.items():
        spellings = names.get(key.replace("_", "").casefold())
        if spellings is None:
            continue
        if key not in spellings:
            raise AmbiguousMember(
                f"The request body names '{key[:80]}', which some JSON readers take for "
                f"'{spellings[0]}'; spell it '{spellings[0]}'."
            )
        if spellings[0] in found:
            raise AmbiguousMember(
                f"The request body names '{spellings[0]}' twice ('{key[:80]}'); name it once."
            )
        found[spellings[0]] = value
    return found


def watch(*names: str | tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """A ``members`` table: each entry a name, or a tuple of its accepted spellings."""
    table: dict[str, tuple[str, ...]] = {}
    for entry in names:
        spellings = (entry,) if isinstance(entry, str) else entry
        table[fold(spellings[0])] = spellings
    return table


class StreamObserver:
    """Watches a streamed answer event by event, collecting usage.

    ``observe`` gets the data of one server-sent event and returns False to keep that
    event from the app (used to drop the usage chunk the vault asked for itself).
    """

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.complete = False
        # Fields of the streamed object naming what its grant owns (``Route.owns``), and
        # the ids seen there.
        self.owns: tuple[str, ...] = ()
        self.owned: list[str] = []

    def observe(self, data: bytes) -> bool:
        return True

    def observe_tail(self, tail: bytes) -> None:
        """The last bytes of a stream that was not server-sent events."""


def sse_data(event: bytes) -> bytes:
    """The joined ``data:`` lines of one server-sent event (WHATWG HTML §9.2.6)."""
    parts = []
    for line in event.splitlines():
        if line.startswith(b"data:"):
            value = line[5:]
            parts.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(parts)


def pick_token(*candidates: str | None) -> str | None:
    """The first candidate that looks like an okap token, else the first one given."""
    present = [c.strip() for c in candidates if c and c.strip()]
    return next((c for c in present if c.startswith("okap_")), present[0] if present else None)


def bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def load_json_object(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class Adapter:
    """The base adapter. Subclasses fill in the family's specifics."""

    family: str = ""

    def __init__(self, provider: str) -> None:
        self.provider = provider

    def client_token(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """The okap token as this family's SDKs send it; None if absent."""
        return bearer(headers)

    def route(self, method: str, path: str, body: dict[str, Any] | None) -> Route:
        raise NotImplementedError

    def requested_max_output(self, route: Route, body: dict[str, Any]) -> int | None:
        """The largest output cap the body names, each field read as any upstream may read
        it; None if it names none, or one the vault cannot read (then it must set one)."""
        found = [body[name] for name in route.max_output_fields if name in body]
        values = [read_count(v) for v in found]
        if not values or any(v is None or v <= 0 for v in values):
            return None
        return max(v for v in values if v is not None)

    def set_max_output(self, route: Route, body: dict[str, Any], value: int) -> None:
        """Cap the answer's length (a grant's ``tokens_per_request``, or the default output
        cap of a spend-limited request that named none) in every field the body names, for
        the provider may read any of them (a smaller cap the app set stays); in the first
        field if it names none."""
        present = [name for name in route.max_output_fields if name in body]
        for name in present or route.max_output_fields[:1]:
            current = read_count(body.get(name))
            if current is None or current <= 0 or current > value:
                body[name] = value

    def demand(self, route: Route, body: dict[str, Any]) -> Demand:
        """What the request asks beyond its bytes; the family reads its own fields."""
        return Demand()

    def multipart_demand(self, route: Route, body: bytes, fields: dict[str, Any]) -> Demand:
        """The same for a ``multipart/form-data`` body, from its form fields."""
        return Demand()

    def prepare_stream(self, body: dict[str, Any]) -> bool:
        """Ask the upstream for stream usage if needed; True if the vault added the ask."""
        return False

    # Body keys, anywhere in a request, whose values name stored objects the request reads
    # (``previous_response_id``, ``file_id``...): each must be one its grant owns. A body
    # is searched for them only if its bytes hold one of ``reference_needles`` (every key
    # holds one) or a JSON escape: a few C-speed scans rule out the common request.
    reference_keys: frozenset[str] = frozenset()
    reference_needles: tuple[bytes, ...] = ()
    # Parts naming a stored object by their type, not a key: ``{"type": t, member: id}``
    # (the Responses API's ``item_reference``); ``t`` must be among the needles.
    reference_types: Mapping[str, str] = MappingProxyType({})
    # Query parameters and headers (lower case) by which the app would choose which fields
    # the answer keeps (Google's field masks): the vault reads the usage from the answer,
    # so they never reach the upstream.
    answer_shaping_query: frozenset[str] = frozenset()
    answer_shaping_headers: frozenset[str] = frozenset()

    def references(self, body: dict[str, Any]) -> list[str]:
        """The stored objects a request body names, as the collection's ``prefix`` names
        them; a value that is not an id (a number, a dict without ``id``) is left to the
        upstream to refuse."""
        found: list[str] = []
        for value in references_in(body, self.reference_keys, self.reference_types):
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict):
                    item = item.get("id")
                if isinstance(item, str):
                    name = self.object_name(item)
                    if name is not None:
                        found.append(name)
        return found

    def object_name(self, value: str) -> str | None:
        """The stored object a referencing value names; None if it names none of the
        organisation's (e.g. a public URL)."""
        return value

    def takes_raw_body(self, path: str) -> bool:
        """Whether the upstream reads this endpoint's body as bytes, not JSON (a media
        upload). Every other body must be a JSON object or a form the vault read: a body it
        forwarded unread could name stored objects or caps it never checked."""
        return False

    def without_answer_shaping(
        self, query: list[tuple[str, str]], headers: list[tuple[str, str]]
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The query and headers without those choosing the answer's fields."""
        if not self.answer_shaping_query and not self.answer_shaping_headers:
            return query, headers
        return (
            [(k, v) for k, v in query if k.lower() not in self.answer_shaping_query],
            [(k, v) for k, v in headers if k.lower() not in self.answer_shaping_headers],
        )

    def usage_from_json(self, body: dict[str, Any]) -> Usage | None:
        raise NotImplementedError

    def stream_observer(self, *, injected_usage: bool) -> StreamObserver:
        raise NotImplementedError

    def error_body(self, status: int, code: str, message: str) -> dict[str, Any]:
        raise NotImplementedError
