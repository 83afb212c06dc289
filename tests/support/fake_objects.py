"""The fake upstream's stored objects: one store per provider, shared by every caller of the
key, as a real organisation's is (files, stored responses and completions, batches, caches).

Each provider's collection endpoints answer as the real API does: create (the new object,
with a fresh id), list (every object of the organisation), get, delete, and the sub-paths
apps call (``files/{id}/content`` is left to the main fake). Only the shapes the proxy and
the SDKs read are filled in."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from starlette.responses import JSONResponse, Response

# (provider, collection path relative to the provider's prefix) → id prefix, object type.
OPENAI = {
    "v1/files": ("file-", "file"),
    "v1/batches": ("batch_", "batch"),
    "v1/chat/completions": ("chatcmpl-", "chat.completion"),
    "v1/responses": ("resp_", "response"),
}
ANTHROPIC = {"v1/files": ("file_", "file"), "v1/messages/batches": ("msgbatch_", "message_batch")}
GOOGLE = {"files": "files/", "cachedContents": "cachedContents/", "batches": "batches/"}


class FakeObjects:
    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], dict[str, Any]] = {}  # (provider, id) → object
        self._lock = threading.Lock()

    def add(self, provider: str, object_id: str, item: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.stored[(provider, object_id)] = item
        return item

    def listed(self, provider: str, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                o
                for (p, _), o in self.stored.items()
                if p == provider and (o.get("object") == kind or o.get("type") == kind)
            ]

    def answer(
        self, provider: str, method: str, path: str, fields: dict[str, Any]
    ) -> Response | None:
        """The answer to a collection call, or None for the main fake to answer."""
        if provider == "openai":
            return self._openai(method, path, fields)
        if provider == "anthropic":
            return self._anthropic(method, path)
        return self._google(method, path)

    def _openai(self, method: str, path: str, fields: dict[str, Any]) -> Response | None:
        for base, (prefix, kind) in OPENAI.items():
            if path == base and method == "GET":
                return JSONResponse(
                    {"object": "list", "data": self.listed("openai", kind), "has_more": False}
                )
            if path == base and method == "POST" and kind in ("file", "batch"):
                object_id = prefix + secrets.token_hex(8)
                item: dict[str, Any] = {"id": object_id, "object": kind, "created_at": 1}
                if kind == "file":
                    item |= {"bytes": 3, "filename": "f.jsonl", "purpose": fields.get("purpose")}
                    item |= {"status": "processed"}
                else:
                    item |= {
                        "endpoint": "/v1/chat/completions",
                        "input_file_id": fields.get("input_file_id"),
                        "completion_window": "24h",
                        "status": "completed",
                        "output_file_id": "file-" + secrets.token_hex(8),
                    }
                return JSONResponse(self.add("openai", object_id, item))
            if path.startswith(base + "/") and kind in (
                "file",
                "batch",
                "response",
                "chat.completion",
            ):
                object_id, _, rest = path.removeprefix(base + "/").partition("/")
                if rest == "content":
                    return None
                if method == "DELETE":
                    return JSONResponse({"id": object_id, "object": kind, "deleted": True})
                if rest in ("messages", "input_items"):
                    return JSONResponse({"object": "list", "data": [], "has_more": False})
                found = self.stored.get(("openai", object_id)) or {"id": object_id, "object": kind}
                return JSONResponse(found)
        return None

    def _anthropic(self, method: str, path: str) -> Response | None:
        for base, (prefix, kind) in ANTHROPIC.items():
            if path == base and method == "GET":
                items = self.listed("anthropic", kind)
                return JSONResponse({"data": items, "has_more": False, "first_id": None})
            if path == base and method == "POST":
                object_id = prefix + secrets.token_hex(8)
                item = {"id": object_id, "type": kind, "created_at": "2025-01-01T00:00:00Z"}
                if kind == "file":
                    item |= {"filename": "f.pdf", "mime_type": "application/pdf", "size_bytes": 3}
                else:
                    item |= {"processing_status": "ended", "request_counts": {}}
                return JSONResponse(self.add("anthropic", object_id, item))
            if path.startswith(base + "/"):
                object_id = path.removeprefix(base + "/").partition("/")[0]
                if method == "DELETE":
                    return JSONResponse({"id": object_id, "type": f"{kind}_deleted"})
                return JSONResponse({"id": object_id, "type": kind})
        return None

    def _google(self, method: str, path: str) -> Response | None:
        parts = path.split("/")
        if parts[0] == "upload":
            parts = parts[1:]
        if len(parts) < 2 or parts[1] not in GOOGLE:
            return None
        prefix, tail = GOOGLE[parts[1]], parts[2:]
        if not tail and method == "GET":
            key = parts[1]
            items = [
                o for (p, i), o in self.stored.items() if p == "google" and i.startswith(prefix)
            ]
            return JSONResponse({key: items})
        if not tail and method == "POST":
            name = prefix + secrets.token_hex(8)
            item = {"name": name, "createTime": time.strftime("%Y-%m-%dT%H:%M:%SZ")}
            self.add("google", name, item)
            return JSONResponse({"file": item} if parts[1] == "files" else item)
        name = prefix + tail[0].partition(":")[0]
        if method == "DELETE":
            return JSONResponse({})
        return JSONResponse(self.stored.get(("google", name)) or {"name": name})
