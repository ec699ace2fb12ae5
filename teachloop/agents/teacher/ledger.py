"""What teacher calls cost and how they failed: the usage ledger and the failure records
of one role (`<role>_ledger.json`, `<role>_failures.jsonl` in the run folder)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from teachloop.errors import TeachloopError
from teachloop.io import read_text, write_json

log = logging.getLogger(__name__)

Message = dict[str, str]


class FailureKind(StrEnum):
    """Why a teacher call ended without a valid reply (`kind` in `<role>_failures.jsonl`)."""

    NO_REPLY = "no reply"
    BUDGET = "budget"  # the iteration's teacher token budget was spent: not sent
    TRANSPORT = "transport"  # no answer after the retries: the phase stays unfinished
    REJECTED = "rejected"  # the backend refused the request: it is not asked again
    NOT_RUN = "not run"  # skipped once the circuit breaker opened
    INVALID = "invalid"  # answered, but the reply does not fit the schema (after the re-asks)


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    message: str


class UsageLedger(BaseModel):
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    invalid_replies: int = 0
    failures: int = 0
    unreached: int = 0  # calls that never got a reply: transport failures after every retry
    scored_tokens: int = 0  # student answer tokens the teacher's weights scored (on-policy distillation)
    cost: float | None = None

    def minus(self, other: UsageLedger) -> dict[str, Any]:
        return {k: v - (getattr(other, k) or 0) for k, v in self.model_dump().items() if isinstance(v, int)}


class TeacherRecords:
    """The ledger and failure log of one role in a run folder (none without a folder)."""

    def __init__(self, run_dir: Path | None, role: str) -> None:
        self.ledger_path = run_dir / f"{role}_ledger.json" if run_dir else None
        self.failures_path = run_dir / f"{role}_failures.jsonl" if run_dir else None
        self.ledger = self._load()

    def _load(self) -> UsageLedger:
        path = self.ledger_path
        if path and path.exists():
            try:
                return UsageLedger.model_validate_json(read_text(path))
            except (ValidationError, TeachloopError):
                log.warning("%s is unreadable; counting teacher usage afresh", path)
        return UsageLedger()

    def save(self) -> None:
        if self.ledger_path:
            write_json(self.ledger_path, self.ledger)

    def record_failure(self, purpose: str, messages: Sequence[Message], raw: str | None, failure: Failure) -> None:
        self.ledger.failures += 1
        if failure.kind is FailureKind.TRANSPORT:
            self.ledger.unreached += 1
        if self.failures_path:
            row = {
                "purpose": purpose, "messages": list(messages), "raw": raw,
                "error": failure.message[:2000], "kind": failure.kind.value,
            }  # fmt: skip
            with self.failures_path.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
