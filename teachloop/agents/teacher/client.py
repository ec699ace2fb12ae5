"""TeacherLLM: the one client for every teacher call.

How a model is reached is a backend's business (`teachloop.agents.teacher.backends`: any
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
  teacher that is down;
- a stop signal (SIGTERM, Ctrl-C) sends nothing more, keeps the replies in flight that land
  within `stopping.GRACE_SECONDS` in the cache and ends the batch with `Stopped`, so a
  resumed run does not pay for them again (`teachloop/stopping.py`).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from teachloop import stopping
from teachloop.agents.teacher.backends import Completion, Job, NotRun, RequestRejected, TeacherBackend, backend_class
from teachloop.agents.teacher.cache import DiskCache, cache_key, request_seed
from teachloop.agents.teacher.config import TeacherConfig
from teachloop.agents.teacher.ledger import Failure, FailureKind, TeacherRecords, UsageLedger
from teachloop.errors import RunStopped, TeachloopError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Message = dict[str, str]


class Progress(Protocol):
    """What `structured` moves as its calls finish (a tqdm bar is one): `update(n)` for n more
    finished, `total` raised by the re-asks."""

    total: float | None

    def update(self, n: float = 1) -> object: ...


class ReadyCheck(BaseModel):
    """The reply to `TeacherLLM.start`'s check request."""

    ok: bool


READY_MESSAGES = [{"role": "user", "content": 'Start-up check: reply with the JSON object {"ok": true}.'}]
READY_PARAMS = {"temperature": 0.0, "max_tokens": 16, "seed": 0}


class _Outcome:
    """CallEvents for the one start-up job: keeps its outcome. `fail_fast`: a backend that
    reads it does not retry a connection that is refused (the check says so at once)."""

    stopped = False
    fail_fast = True

    def __init__(self) -> None:
        self.value: Completion | BaseException | None = None

    def done(self, index: int, outcome: Completion | BaseException) -> None:
        self.value = outcome

    def retried(self) -> None:
        pass

    def progressed(self, count: int) -> None:
        pass


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


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
        self.records = TeacherRecords(self.run_dir, role)
        self.ledger = self.records.ledger
        self.resolve_model = resolve_model
        self._backend: TeacherBackend | None = backend
        self._started = False
        self._lock = threading.Lock()
        self._budget_mark: tuple[int, int, float] | None = None  # (tokens, calls, cost) when the window opened
        self._failures_in_a_row = 0
        self._last_failure = ""

    def _spent(self) -> tuple[int, int, float]:
        ledger = self.ledger
        return ledger.prompt_tokens + ledger.completion_tokens, ledger.calls, ledger.cost or 0.0

    def open_budget_window(self) -> None:
        """Start counting the per-iteration budgets (tokens, calls, cost) afresh; the loop calls
        it per iteration."""
        self._budget_mark = self._spent()

    def _over_budget(self) -> str | None:
        """Which per-iteration budget is spent ("token", "call", "cost"), None while none is.
        Tokens and cost are known only after a call, so a batch sent below them may end above."""
        if self._budget_mark is None:
            return None
        cfg = self.cfg
        spent = [now - mark for now, mark in zip(self._spent(), self._budget_mark, strict=True)]
        limits = (cfg.max_tokens_per_iteration, cfg.max_calls_per_iteration, cfg.max_cost_per_iteration)
        for name, used, limit in zip(("token", "call", "cost"), spent, limits, strict=True):
            if limit is not None and used >= limit:
                return name
        return None

    def _calls_left(self) -> int | None:
        """Paid calls this iteration may still make, None without a call budget."""
        limit = self.cfg.max_calls_per_iteration
        if limit is None or self._budget_mark is None:
            return None
        return max(0, limit - (self.ledger.calls - self._budget_mark[1]))

    @property
    def name(self) -> str:
        return self.cfg.spec

    @property
    def url(self) -> str | None:
        """The URL a remote backend reaches; None for a local one."""
        return backend_class(self.cfg.backend).endpoint(self.cfg.options)

    @property
    def endpoint(self) -> str:
        """Who answers, for the cache key: the backend and, for a remote one, its base URL."""
        url = self.url
        return self.cfg.backend if url is None else f"{self.cfg.backend}@{url}"

    @property
    def backend(self) -> TeacherBackend:
        if self._backend is None:  # started by `start`, or when a call first misses the cache
            cls = backend_class(self.cfg.backend)
            model = self.cfg.model
            if cls.local_weights and self.resolve_model is not None:
                model = self.resolve_model(model)
            try:
                self._backend = cls(self.cfg.options, teacher=self.cfg, model=model)
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
            url = self.url
            where = "" if url is None else f" at {url or 'the default OpenAI URL'}"
            hint = "" if url is None else "; is the server up, and teacher.options.base_url / $OPENAI_BASE_URL right?"
            cause = _first_line(reply) if reply is not None else "no reply"
            raise TeachloopError(f"teacher {self.name}{where} failed its start-up check: {cause}{hint}")
        try:
            parse_reply(reply.text, ReadyCheck)
        except ValidationError:
            if type(backend).constrains_output:
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
    def failures_path(self) -> Path | None:
        return self.records.failures_path

    def _save_ledger(self) -> None:
        self.records.save()

    def _record_failure(self, purpose: str, messages: Sequence[Message], raw: str | None, failure: Failure) -> None:
        self.records.record_failure(purpose, messages, raw, failure)

    def _add_usage(self, completion: Completion) -> None:
        self.ledger.calls += 1
        self.ledger.prompt_tokens += completion.prompt_tokens
        self.ledger.completion_tokens += completion.completion_tokens
        pp, pc = self.cfg.price_prompt_per_mtok, self.cfg.price_completion_per_mtok
        if pp is not None or pc is not None:
            cost = (completion.prompt_tokens * (pp or 0) + completion.completion_tokens * (pc or 0)) / 1e6
            self.ledger.cost = (self.ledger.cost or 0.0) + cost

    def record_scored(self, tokens: int) -> None:
        """Tokens the teacher's weights scored for on-policy distillation (the train phase
        loads them itself): counted in the ledger beside the tokens it wrote."""
        self.ledger.scored_tokens += tokens
        self._save_ledger()

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
        progress: Progress | None = None,
    ) -> list[M | None]:
        """One validated `schema` object per conversation, or None where it stayed invalid.
        `schema` is one model for every conversation or one per conversation (they go out as
        one batch either way). `sample` k > 0 draws the k-th of several independent samples of
        the same conversations (its own seeds and cache entries). `progress` (total: one per
        conversation) moves by one per reply landed or found in the cache; a re-ask adds to
        its total.

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
            if attempt and progress is not None and progress.total is not None:
                progress.total += len(pending)
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
            if progress is not None and len(misses) < len(pending):
                progress.update(len(pending) - len(misses))
            # identical requests (same key) are sent once and share the reply: two sent separately
            # could differ (batched sampling is not bitwise stable) while the cache keeps one of
            # them, and a resumed run would then read back what one of the slots never had
            twins: dict[int, list[int]] = {}
            first: dict[str, int] = {}
            for i in misses:
                if keys[i] in first:
                    twins[first[keys[i]]].append(i)
                else:
                    first[keys[i]] = i
                    twins[i] = []
            if len(first) < len(misses):
                self.ledger.cache_hits += len(misses) - len(first)
                if progress is not None:
                    progress.update(len(misses) - len(first))
                misses = list(first.values())
            spent = self._over_budget() if misses else None
            if spent is not None:
                for i in misses:
                    last_error[i] = Failure(FailureKind.BUDGET, f"teacher {spent} budget of this iteration is spent")
                misses = []
            left = self._calls_left()
            if left is not None and len(misses) > left:  # the call budget is exact: send only what it allows
                for i in misses[left:]:
                    last_error[i] = Failure(FailureKind.BUDGET, "teacher call budget of this iteration is spent")
                misses = misses[:left]
            if misses:
                jobs = [
                    Job(
                        messages=list(conversations[i]),
                        json_schema=json_schemas[id(schemas[i])],
                        params=params | {"seed": seeds[i]},
                    )
                    for i in misses
                ]
                events = _Events(self, misses, keys, last_raw, last_error, progress)
                with stopping.in_flight(events.describe):
                    self.backend.complete(jobs, events)
                signum = stopping.requested()
                if signum is not None:  # what landed is cached; the rest is asked on resume
                    self._save_ledger()
                    raise stopping.Stopped(signum, events.describe(timed_out=False))
                if self.breaker_open:
                    for i in pending:
                        if last_raw[i] is None and last_error[i].kind is not FailureKind.NOT_RUN:
                            self._record_failure(purpose, conversations[i], None, last_error[i])
                    self._save_ledger()
                    raise self._stop_error()
            for i, others in twins.items():
                for j in others:
                    last_raw[j], last_error[j] = last_raw[i], last_error[i]
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

    def __init__(self, client: TeacherLLM, misses, keys, last_raw, last_error, progress: Progress | None) -> None:
        self.client, self.misses, self.keys = client, misses, keys
        self.last_raw, self.last_error = last_raw, last_error
        self.progress = progress
        self.finished = self.reported = self.shown = 0  # jobs done; said finished by the backend; shown
        self.not_sent = self.landed_late = 0  # after a stop signal: jobs not started; replies that landed
        self.sent = self.not_run = 0  # jobs a backend said it started (`starting`); jobs reported not run

    def starting(self, index: int) -> None:
        """Optional for a backend: job `index` is being sent now (so a stop can tell the
        requests in flight from those never sent)."""
        self.sent += 1

    def describe(self, timed_out: bool) -> list[str]:
        """What became of the batch's requests once a stop signal came (called from a signal
        handler too: reads counts, takes no lock)."""
        parts = []
        if self.landed_late:
            n = self.landed_late
            parts.append(f"{n} teacher {'reply' if n == 1 else 'replies'} in flight kept in the cache")
        not_sent = self.not_sent
        left = len(self.misses) - self.finished
        if timed_out and left:
            if self.sent:  # the backend says what it sent: the rest of those left were never sent
                in_flight = self.sent - (self.finished - self.not_run)
                not_sent += left - in_flight
                left = in_flight
            if left:
                wait = f"{stopping.GRACE_SECONDS:g}s"
                parts.append(f"{left} teacher request(s) still in flight after {wait} given up (asked again on resume)")
        if not_sent:
            parts.append(f"{not_sent} teacher request(s) not sent")
        return parts

    def _show(self) -> None:
        """Move the bar to the larger of the two counts (under the client's lock)."""
        now = max(self.finished, self.reported)
        if self.progress is not None and now > self.shown:
            self.progress.update(now - self.shown)
        self.shown = now

    def progressed(self, count: int) -> None:
        with self.client._lock:
            self.reported += count
            self._show()

    @property
    def stopped(self) -> bool:
        return self.client.breaker_open or stopping.requested() is not None

    def retried(self) -> None:
        with self.client._lock:
            self.client.ledger.retries += 1

    def done(self, index: int, outcome: Completion | BaseException) -> None:
        client, i = self.client, self.misses[index]
        with client._lock:
            self.finished += 1
            self._show()
            if isinstance(outcome, BaseException):
                self.last_raw[i] = None
                if isinstance(outcome, NotRun):
                    self.last_error[i] = Failure(FailureKind.NOT_RUN, f"not run: {outcome}")
                    self.not_run += 1
                    self.not_sent += stopping.requested() is not None
                    return
                kind = FailureKind.REJECTED if isinstance(outcome, RequestRejected) else FailureKind.TRANSPORT
                self.last_error[i] = Failure(kind, f"{kind.value}: {outcome}")
                if kind is FailureKind.TRANSPORT:
                    client._failures_in_a_row += 1
                    client._last_failure = f"{type(outcome).__name__}: {outcome}"
                return
            client._failures_in_a_row = 0
            self.landed_late += stopping.requested() is not None
            client._add_usage(outcome)
            self.last_raw[i] = outcome.text
            if client.cache:  # written as each reply lands, so a kill loses nothing paid for
                client.cache.put(self.keys[i], outcome.model_dump())
            client._save_ledger()


def _short(exc: ValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    return f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', str(exc))}"[:300]
