"""The teacher's reply cache: content-addressed JSON files, keyed by who answers and what
was asked, so a resumed or repeated run pays nothing twice."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from teachloop.io import atomic_write_text

Message = dict[str, str]


class DiskCache:
    """Content-addressed JSON files: <dir>/<key[:2]>/<key>.json, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):  # a damaged entry is a miss
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        atomic_write_text(self._path(key), json.dumps(value))


def cache_key(
    endpoint: str, model: str, messages: Sequence[Message], params: dict[str, Any], schema: dict[str, Any]
) -> str:
    """Who answers (backend and endpoint, model) and what was asked: never a credential."""
    blob = json.dumps(
        {"endpoint": endpoint, "model": model, "messages": messages, "params": params, "schema": schema}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def request_seed(seed: int, attempt: int, messages: Sequence[Message], sample: int = 0) -> int:
    """A sampling seed of its own for every request (and re-ask, and each of several samples
    of the same conversation): requests that share the run's seed would otherwise draw
    correlated samples."""
    fields: dict[str, Any] = {"seed": seed, "attempt": attempt, "messages": messages}
    if sample:  # sample 0 keeps the seeds (and cache keys) of runs made before samples existed
        fields["sample"] = sample
    blob = json.dumps(fields, sort_keys=True)
    return int(hashlib.sha256(blob.encode()).hexdigest()[:8], 16) % 2**31
