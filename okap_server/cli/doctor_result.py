"""One line of ``okap-server doctor``'s report, shared by its check modules."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    status: str  # "ok" | "FAIL" | "skip" | "warn" (reported, not a failure)
    name: str
    detail: str
