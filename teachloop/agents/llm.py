"""TeacherLLM: the one client for every teacher call.

How a model is reached is a backend's business (`teachloop.agents.backends`: any
OpenAI-compatible endpoint, an in-process `vllm.LLM`, or a plug-in registered under the
`teachloop.teacher_backends` entry points). Everything else lives here, once:

- every call asks for JSON that fits a pydantic model's schema and validates the reply
  with that model; a reply that still fails after `validation_retries` more asks is
  recorded (prompt, raw reply, error) in `teacher_failures.jsonl` and skipped;
- replies are cached on disk, content-addressed by (backend, endpoint, model, messages,
  sampling parameters, schema, attempt) and written as each lands, so a resumed or
  repeated run pays nothing twice;
- a usage ledger counts calls, cache hits, tokens, retries, invalid replies, failures, cost;
- a circuit breaker: `max_consecutive_failures` failed calls in a row stop the run with a
  `RunStopped` error that names the failure log, instead of burning the budget on a
  teacher that is down.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_serializer

from teachloop.agents.backends import Completion, Job, NotRun, RequestRejected, TeacherBackend, backend_class
from teachloop.errors import ConfigError, RunStopped, TeachloopError
from teachloop.io import REDACTED, atomic_write_text, read_text, write_json

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
REMOTE_BACKENDS = ("openai", "raydata")  # their cache keys name the endpoint they reach
# backends that constrain decoding to the schema: a start-up reply that does not fit it is an error
# (a plug-in may not constrain; its invalid replies are re-asked and recorded, so it only warns)
CONSTRAINED_BACKENDS = ("openai", "vllm", "raydata", "raydata-vllm")
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


class TeacherConfig(BaseModel):
    """Which teacher to call and how. `teachloop run --teacher <backend>:<model>`."""

    model_config = ConfigDict(extra="forbid")

    backend: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="openai | vllm | raydata | a plug-in backend"
    )
    model: str = Field(min_length=1)
    base_url: str | None = Field(default=None, description="default: $OPENAI_BASE_URL, else the OpenAI API")
    api_key: SecretStr | None = Field(
        default=None,
        description="default: $OPENAI_API_KEY, else 'EMPTY'. Never written to disk: the run's config records "
        "only that one was given, so a resumed run needs $OPENAI_API_KEY",
    )
    concurrency: int = Field(
        default=8, ge=1, description="requests in flight at once (openai backend); Ray workers (raydata backend)"
    )
    qps: int | None = Field(default=None, ge=1, description="requests per second per Ray worker (raydata backend)")
    timeout: float = Field(default=60.0, gt=0, description="seconds per request")
    max_retries: int = Field(default=6, ge=0, description="retries of rate limits, timeouts, 5xx, connection errors")
    validation_retries: int = Field(default=2, ge=0, description="extra asks when a reply fails validation")
    max_consecutive_failures: int = Field(
        default=8, ge=1, description="circuit breaker: this many failed calls in a row stop the run"
    )
    temperature: float = Field(default=0.7, ge=0)
    generation_temperature: float = Field(
        default=1.0,
        ge=0,
        description="sampling temperature when the teacher writes new examples (the llm engine): Qwen2.5-Coder-0.5B "
        "wrote 12 duplicates of 80 skillworld items at 0.7, 3 at 1.0",
    )
    max_tokens: int = Field(default=512, ge=1)
    seed: int = 0
    send_seed: bool = Field(default=True, description="send a per-request sampling seed")
    max_tokens_per_iteration: int | None = Field(
        default=None, ge=1, description="teacher token budget per loop iteration (equal budgets in benchmarks)"
    )
    price_prompt_per_mtok: float | None = Field(default=None, ge=0, description="cost per million prompt tokens")
    price_completion_per_mtok: float | None = Field(default=None, ge=0)
    vllm_options: dict[str, Any] = Field(
        default_factory=dict, description="extra vllm.LLM arguments, e.g. gpu_memory_utilization, max_model_len"
    )

    @field_serializer("api_key")
    def _never_the_key(self, value: SecretStr | None, info: Any) -> str | None:
        """REDACTED in every dump, unless the dump is handed to another process in memory
        (`context={"reveal_secrets": True}`: bench workers)."""
        if value is None:
            return None
        return value.get_secret_value() if (info.context or {}).get("reveal_secrets") else REDACTED

    def resolved_api_key(self) -> str:
        """The key to send: the configured one, else $OPENAI_API_KEY, else 'EMPTY' (local
        servers). A config read back from disk holds only REDACTED: the environment must
        supply the key again."""
        given = self.api_key.get_secret_value() if self.api_key is not None else None
        if given == REDACTED:
            if not os.environ.get("OPENAI_API_KEY"):
                raise TeachloopError(
                    "this run was given an api_key, which teachloop never stores on disk: "
                    "export OPENAI_API_KEY=... and run the command again"
                )
            given = None
        return given or os.environ.get("OPENAI_API_KEY") or "EMPTY"

    @property
    def spec(self) -> str:
        """`<backend>:<model>`, as `--teacher` takes it (and the teacher's name in lineage)."""
        return f"{self.backend}:{self.model}"

    @classmethod
    def from_spec(cls, spec: str, **fields: Any) -> TeacherConfig:
        backend, model = parse_teacher_spec(spec)
        return cls(backend=backend, model=model, **{k: v for k, v in fields.items() if v is not None})


def parse_teacher_spec(spec: str) -> tuple[str, str]:
    """'<backend>:<model>' (e.g. 'vllm:<path-or-id>', 'openai:<model>') -> (backend, model)."""
    backend, sep, model = spec.partition(":")
    if not sep or not backend or not model:
        raise ConfigError(
            f"--teacher must look like '<backend>:<model>', e.g. 'vllm:<path-or-id>' or 'openai:<model>'; got {spec!r}"
        )
    return backend, model


class ReadyCheck(BaseModel):
    """The reply to `TeacherLLM.start`'s check request."""

    ok: bool


READY_MESSAGES = [{"role": "user", "content": 'Start-up check: reply with the JSON object {"ok": true}.'}]
READY_PARAMS = {"temperature": 0.0, "max_tokens": 16, "seed": 0}


class _Outcome:
    """CallEvents for the one start-up job: keeps its outcome."""

    stopped = False

    def __init__(self) -> None:
        self.value: Completion | BaseException | None = None

    def done(self, index: int, outcome: Completion | BaseException) -> None:
        self.value = outcome

    def retried(self) -> None:
        pass


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


class UsageLedger(BaseModel):
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    invalid_replies: int = 0
    failures: int = 0
    unreached: int = 0  # calls that never got a reply: transport failures after every retry
    cost: float | None = None

    def minus(self, other: UsageLedger) -> dict[str, Any]:
        return {k: v - (getattr(other, k) or 0) for k, v in self.model_dump().items() if isinstance(v, int)}


# -- the cache ----------------------------------------------------------------------------
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


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def parse_reply(text: str, schema: type[M]) -> M:
    """Validate a reply against the schema (tolerating a markdown code fence around it)."""
    return schema.model_validate_json(_FENCE.sub("", text.strip()))


# -- the client ---------------------------------------------------------------------------
class TeacherLLM:
    """`resolve_model` turns the configured model into the checkpoint folder a backend with
    local weights (in-process vLLM) loads: a .gguf file or hub id becomes a folder. `role`
    names its ledger and failure files in the run folder (`<role>_ledger.json`): the run's
    teacher is "teacher"; other models a policy asks (delta's) have roles of their own and
    share the run's cache."""

    def __init__(
        self,
        cfg: TeacherConfig,
        run_dir: Path | None = None,
        cache_dir: Path | None = None,
        resolve_model: Callable[[str], str] | None = None,
        role: str = "teacher",
        backend: TeacherBackend | None = None,
    ) -> None:
        """`backend`: one already built for this model (several runs in one process sharing an
        in-process engine); default: built from `cfg` when first needed."""
        self.cfg = cfg
        self.role = role
        self.run_dir = Path(run_dir) if run_dir else None
        cache_root = cache_dir or (self.run_dir / "cache" if self.run_dir else None)
        self.cache = DiskCache(cache_root) if cache_root else None
        self.ledger = self._load_ledger()
        self.resolve_model = resolve_model
        self._backend: TeacherBackend | None = backend
        self._started = False
        self._lock = threading.Lock()
        self._budget_mark: int | None = None  # ledger tokens when the current budget window opened
        self._failures_in_a_row = 0
        self._last_failure = ""

    def open_budget_window(self) -> None:
        """Start counting `max_tokens_per_iteration` afresh (the loop calls it per iteration)."""
        self._budget_mark = self.ledger.prompt_tokens + self.ledger.completion_tokens

    def _over_budget(self) -> bool:
        limit = self.cfg.max_tokens_per_iteration
        if limit is None or self._budget_mark is None:
            return False
        return self.ledger.prompt_tokens + self.ledger.completion_tokens - self._budget_mark >= limit

    @property
    def name(self) -> str:
        return self.cfg.spec

    @property
    def endpoint(self) -> str:
        """Who answers, for the cache key: the backend and, for a remote one, its base URL."""
        base_url = self.cfg.base_url or os.environ.get("OPENAI_BASE_URL") or ""
        return f"{self.cfg.backend}@{base_url}" if self.cfg.backend in REMOTE_BACKENDS else self.cfg.backend

    @property
    def backend(self) -> TeacherBackend:
        if self._backend is None:  # started by `start`, or when a call first misses the cache
            cls = backend_class(self.cfg.backend)
            model = self.cfg.model
            if getattr(cls, "local_weights", False) and self.resolve_model is not None:
                model = self.resolve_model(model)
            try:
                self._backend = cls(self.cfg, model)
            except TeachloopError:
                raise
            except Exception as exc:  # noqa: BLE001  (a plug-in backend may raise anything)
                raise TeachloopError(f"teacher {self.name} could not start: {_first_line(exc)}") from None
        return self._backend

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> None:
        """Start the backend now and send it one small structured request through it, before
        a run spends anything: the endpoint answers (or the model loads), it has a chat
        template, and structured output works. Each failure is one TeachloopError that says
        what to change. The check is neither cached nor counted in the ledger."""
        if self._started:
            return
        backend = self.backend
        outcome = _Outcome()
        job = Job(messages=READY_MESSAGES, json_schema=ReadyCheck.model_json_schema(), params=READY_PARAMS)
        try:
            backend.complete([job], outcome)
        except TeachloopError as exc:
            raise TeachloopError(f"teacher {self.name} failed its start-up check: {exc}") from None
        except Exception as exc:  # noqa: BLE001
            raise TeachloopError(f"teacher {self.name} failed its start-up check: {_first_line(exc)}") from None
        reply = outcome.value
        if isinstance(reply, RequestRejected):
            raise TeachloopError(
                f"teacher {self.name} refused its start-up check ({_first_line(reply)}): the model must have a chat "
                "template and the endpoint must take JSON-schema structured output (response_format json_schema; "
                "vLLM >= 0.12)"
            )
        if reply is None or isinstance(reply, BaseException):
            where = f" at {self.endpoint.partition('@')[2] or 'the default OpenAI URL'}" if "@" in self.endpoint else ""
            hint = (
                "; is the server up, and teacher.base_url / $OPENAI_BASE_URL right?"
                if self.cfg.backend in REMOTE_BACKENDS
                else ""
            )
            cause = _first_line(reply) if reply is not None else "no reply"
            raise TeachloopError(f"teacher {self.name}{where} failed its start-up check: {cause}{hint}")
        try:
            parse_reply(reply.text, ReadyCheck)
        except ValidationError:
            if self.cfg.backend in CONSTRAINED_BACKENDS:
                raise TeachloopError(
                    f"teacher {self.name} answered its start-up check with {reply.text[:80]!r}, not the JSON schema "
                    "it was asked for: the endpoint ignores structured output (it needs response_format json_schema; "
                    "vLLM >= 0.12)"
                ) from None
            log.warning(
                "teacher %s answered its start-up check with %r, not the JSON asked for: backend %r does not "
                "constrain its replies, so expect invalid ones (re-asked, then recorded in %s)",
                self.name, reply.text[:80], self.cfg.backend, self.failures_path,
            )  # fmt: skip
        self._started = True

    # -- ledger and failure records -------------------------------------------------------
    @property
    def _ledger_path(self) -> Path | None:
        return self.run_dir / f"{self.role}_ledger.json" if self.run_dir else None

    @property
    def failures_path(self) -> Path | None:
        return self.run_dir / f"{self.role}_failures.jsonl" if self.run_dir else None

    def _load_ledger(self) -> UsageLedger:
        path = self._ledger_path
        if path and path.exists():
            try:
                return UsageLedger.model_validate_json(read_text(path))
            except (ValidationError, TeachloopError):
                log.warning("%s is unreadable; counting teacher usage afresh", path)
        return UsageLedger()

    def _save_ledger(self) -> None:
        if self._ledger_path:
            write_json(self._ledger_path, self.ledger)

    def _record_failure(self, purpose: str, messages: Sequence[Message], raw: str | None, failure: Failure) -> None:
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

    def _add_usage(self, completion: Completion) -> None:
        self.ledger.calls += 1
        self.ledger.prompt_tokens += completion.prompt_tokens
        self.ledger.completion_tokens += completion.completion_tokens
        pp, pc = self.cfg.price_prompt_per_mtok, self.cfg.price_completion_per_mtok
        if pp is not None or pc is not None:
            cost = (completion.prompt_tokens * (pp or 0) + completion.completion_tokens * (pc or 0)) / 1e6
            self.ledger.cost = (self.ledger.cost or 0.0) + cost

    @property
    def breaker_open(self) -> bool:
        return self._failures_in_a_row >= self.cfg.max_consecutive_failures

    def raise_for_unreached(self, since: UsageLedger) -> None:
        """Stop when calls went unanswered since `since` (transport failures after retries):
        the work that needed them is not complete and must not be published as done."""
        missed = self.ledger.unreached - since.unreached
        if missed:
            where = f" (see {self.failures_path})" if self.failures_path else ""
            raise RunStopped(
                f"teacher {self.name}: {missed} call(s) got no reply after {self.cfg.max_retries} retries "
                f"(last: {self._last_failure[:200]}){where}; this phase is kept unfinished: resume to ask again "
                "(replies already paid for come from the cache)"
            )

    def _stop_error(self) -> RunStopped:
        where = f"; every failed call is in {self.failures_path}" if self.failures_path else ""
        limit = self.cfg.max_consecutive_failures  # the count the user set, whatever was in flight
        extra = self._failures_in_a_row - limit
        also = f" ({extra} calls in flight then failed too)" if extra > 0 else ""
        return RunStopped(
            f"teacher {self.name} failed {limit} calls in a row (last: {self._last_failure[:200]}){where}; "
            f"max_consecutive_failures is {limit}{also}. Fix the teacher (is it up, is the URL right?), "
            "then resume: replies already paid for come from the cache"
        )

    # -- the one entry point --------------------------------------------------------------
    def structured(
        self,
        conversations: Sequence[Sequence[Message]],
        schema: type[M] | Sequence[type[M]],
        purpose: str = "call",
        temperature: float | None = None,
        max_tokens: int | None = None,
        sample: int = 0,
    ) -> list[M | None]:
        """One validated `schema` object per conversation, or None where it stayed invalid.
        `schema` is one model for every conversation or one per conversation (they go out as
        one batch either way). `sample` k > 0 draws the k-th of several independent samples of
        the same conversations (its own seeds and cache entries).

        Raises RunStopped when the circuit breaker opens (too many failed calls in a row)."""
        schemas = [schema] * len(conversations) if isinstance(schema, type) else list(schema)
        if len(schemas) != len(conversations):
            raise ValueError(f"{len(schemas)} schemas for {len(conversations)} conversations")
        json_schemas = {id(s): s.model_json_schema() for s in schemas}
        results: list[M | None] = [None] * len(conversations)
        last_raw: list[str | None] = [None] * len(conversations)
        last_error: list[Failure] = [Failure(FailureKind.NO_REPLY, "no reply")] * len(conversations)
        pending = list(range(len(conversations)))
        given_up: list[int] = []
        for attempt in range(self.cfg.validation_retries + 1):
            params = {
                "temperature": self.cfg.temperature if temperature is None else temperature,
                "max_tokens": max_tokens or self.cfg.max_tokens,
            }
            seeds = {i: request_seed(self.cfg.seed, attempt, conversations[i], sample) for i in pending}
            keys = {
                i: cache_key(
                    self.endpoint,
                    self.cfg.model,
                    conversations[i],
                    params | {"seed": seeds[i]},
                    json_schemas[id(schemas[i])],
                )
                for i in pending
            }
            misses: list[int] = []
            for i in pending:
                hit = self.cache.get(keys[i]) if self.cache else None
                if hit is None:
                    misses.append(i)
                else:
                    self.ledger.cache_hits += 1
                    last_raw[i] = hit["text"]
            if misses and self._over_budget():
                for i in misses:
                    last_error[i] = Failure(FailureKind.BUDGET, "teacher token budget of this iteration is spent")
            elif misses:
                jobs = [
                    Job(
                        messages=list(conversations[i]),
                        json_schema=json_schemas[id(schemas[i])],
                        params=params | {"seed": seeds[i]},
                    )
                    for i in misses
                ]
                self.backend.complete(jobs, _Events(self, misses, keys, last_raw, last_error))
                if self.breaker_open:
                    for i in pending:
                        if last_raw[i] is None and last_error[i].kind is not FailureKind.NOT_RUN:
                            self._record_failure(purpose, conversations[i], None, last_error[i])
                    self._save_ledger()
                    raise self._stop_error()
            still: list[int] = []
            for i in pending:
                if last_raw[i] is None:
                    if last_error[i].kind is not FailureKind.REJECTED:  # a refused request is not asked again
                        still.append(i)
                    else:
                        given_up.append(i)
                    continue
                try:
                    results[i] = parse_reply(last_raw[i], schemas[i])
                except ValidationError as exc:
                    self.ledger.invalid_replies += 1
                    last_error[i] = Failure(
                        FailureKind.INVALID, f"reply does not fit {schemas[i].__name__}: {_short(exc)}"
                    )
                    still.append(i)
            pending = still
            if not pending:
                break
        for i in [*given_up, *pending]:
            self._record_failure(purpose, conversations[i], last_raw[i], last_error[i])
        self._save_ledger()
        return results


class _Events:
    """The CallEvents a backend reports to: ledger, cache and breaker updates, thread-safe."""

    def __init__(self, client: TeacherLLM, misses, keys, last_raw, last_error) -> None:
        self.client, self.misses, self.keys = client, misses, keys
        self.last_raw, self.last_error = last_raw, last_error

    @property
    def stopped(self) -> bool:
        return self.client.breaker_open

    def retried(self) -> None:
        with self.client._lock:
            self.client.ledger.retries += 1

    def done(self, index: int, outcome: Completion | BaseException) -> None:
        client, i = self.client, self.misses[index]
        with client._lock:
            if isinstance(outcome, BaseException):
                self.last_raw[i] = None
                if isinstance(outcome, NotRun):
                    self.last_error[i] = Failure(FailureKind.NOT_RUN, f"not run: {outcome}")
                    return
                kind = FailureKind.REJECTED if isinstance(outcome, RequestRejected) else FailureKind.TRANSPORT
                self.last_error[i] = Failure(kind, f"{kind.value}: {outcome}")
                if kind is FailureKind.TRANSPORT:
                    client._failures_in_a_row += 1
                    client._last_failure = f"{type(outcome).__name__}: {outcome}"
                return
            client._failures_in_a_row = 0
            client._add_usage(outcome)
            self.last_raw[i] = outcome.text
            if client.cache:  # written as each reply lands, so a kill loses nothing paid for
                client.cache.put(self.keys[i], outcome.model_dump())
            client._save_ledger()


def _short(exc: ValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    return f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', str(exc))}"[:300]
