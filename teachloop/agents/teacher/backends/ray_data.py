"""Any OpenAI-compatible chat endpoint, reached through a Ray Data LLM HTTP processor
(`ray.data.llm.HttpRequestProcessorConfig` + `build_processor`): the batch of jobs becomes a
Ray dataset whose rows are sent by a pool of Ray workers, on a local Ray instance or on the
cluster named by $RAY_ADDRESS.

`--teacher raydata:<model> --teacher-base-url http://host:8000/v1`. The API key comes from
the teacher config or $OPENAI_API_KEY, as for the openai backend, and travels only in the
request headers. Ray's HTTP stage retries 429/408/502/503/504 and connection faults itself
(`max_retries` of the teacher config); each of those retries is counted, in the worker, and
comes back with the row it preceded, so the ledger's `retries` is the same as with the
openai backend. A row the endpoint answers with another error comes back as that error
body and is mapped here to the exception `TeacherLLM` expects.
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from pydantic import Field

from teachloop.agents.teacher.backends.base import (
    Backend,
    CallEvents,
    Completion,
    Job,
    NotRun,
    RequestRejected,
    TransientError,
)
from teachloop.agents.teacher.backends.openai_api import OpenAIOptions
from teachloop.errors import ConfigError, TeachloopError
from teachloop.inference.ray_data import INSTALL_HINT, ensure_ray

DEFAULT_BASE_URL = "https://api.openai.com/v1"
WORKER_CPUS = 0.25  # an HTTP worker waits on the network: several share one core
MAX_BATCH_ROWS = 16  # rows stream back (and are cached) batch by batch
RETRY_WAIT_S = 0.5

REJECTED_STATUSES = {400, 413, 422}
FATAL_STATUSES = {401, 403, 404}
REJECTED_TYPES = {"invalid_request_error", "BadRequestError"}
FATAL_TYPES = {"authentication_error", "permission_error", "NotFoundError", "AuthenticationError"}


def import_ray_data_llm() -> tuple[Any, Any, Any]:
    try:
        import ray
        from ray.data.llm import HttpRequestProcessorConfig, build_processor
    except ImportError:
        raise ConfigError(
            f"the raydata teacher backend needs Ray Data LLM, which is not installed: {INSTALL_HINT}"
        ) from None
    return ray, HttpRequestProcessorConfig, build_processor


# -- what runs in the Ray workers ----------------------------------------------------------
STATUS_KEY = "teachloop_http_status"
RETRIES_KEY = "teachloop_retries"
RAY_RETRIED_STATUSES = frozenset({408, 429, 502, 503, 504})  # Ray's HttpRequestUDF.RETRYABLE_STATUS_CODES


def _to_request(row: dict[str, Any]) -> dict[str, Any]:
    return {"index": row["index"], "payload": json.loads(row["request"])}


def _from_response(row: dict[str, Any]) -> dict[str, Any]:
    """The reply's text and usage, or the endpoint's error (HTTP status, type, message)."""
    body = row.get("http_response") or {}
    out = {
        "index": row["index"],
        "text": "",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "retries": int(body.get(RETRIES_KEY) or 0),
    }
    error = body.get("error") if isinstance(body.get("error"), dict) else None
    if error is None and body.get("object") == "error":  # vLLM's older error body
        error = body
    status = body.get(STATUS_KEY)
    if error is not None or status or not body.get("choices"):
        error = error or {"message": f"response without choices: {json.dumps(body)[:300]}"}
        code = error.get("code")
        if not status and (isinstance(code, int) or (isinstance(code, str) and code.isdigit())):
            status = int(code)
        return out | {
            "status": int(status or 0),
            "error_type": str(error.get("type") or ""),
            "error": str(error.get("message")),
        }
    usage = body.get("usage") or {}
    return out | {
        "text": body["choices"][0].get("message", {}).get("content") or "",
        "prompt_tokens": int(usage.get("prompt_tokens") or 0),
        "completion_tokens": int(usage.get("completion_tokens") or 0),
        "status": 200,
        "error_type": "",
        "error": "",
    }


@functools.cache
def _response_class() -> type:
    """aiohttp's response, whose json() keeps what Ray's HTTP stage drops: the status of an
    error reply (under STATUS_KEY), the retries Ray made before it (RETRIES_KEY), and an
    unreadable body as a retryable error of its row instead of an exception that would end
    the whole dataset."""
    import aiohttp

    class StatusKeepingResponse(aiohttp.ClientResponse):
        retries_before: int = 0  # set by the session's trace (_retry_counter)

        async def json(self, *args: Any, **kwargs: Any) -> Any:
            try:
                body = json.loads(await self.read())
            except (ValueError, UnicodeDecodeError):
                body = {STATUS_KEY: 502, "error": {"message": "unreadable response body"}}
            if self.status >= 400:
                body = body if isinstance(body, dict) else {"error": {"message": str(body)[:300]}}
                body.setdefault(STATUS_KEY, self.status)
            if isinstance(body, dict) and self.retries_before:
                body[RETRIES_KEY] = self.retries_before
            return body

    return StatusKeepingResponse


def _retry_counter() -> Any:
    """A trace for one session (one batch of rows, whose replies Ray reads one row after the
    other): every response Ray will retry and every failed connection is counted, and the
    count so far goes to the next response Ray keeps, i.e. to the row those retries were for."""
    import aiohttp

    unreported = 0

    async def on_end(_session: Any, _ctx: Any, params: Any) -> None:
        nonlocal unreported
        if params.response.status in RAY_RETRIED_STATUSES:
            unreported += 1
        else:
            params.response.retries_before, unreported = unreported, 0

    async def on_exception(_session: Any, _ctx: Any, _params: Any) -> None:
        nonlocal unreported
        unreported += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_exception)
    return trace


def _session_factory(timeout: float) -> Any:
    import aiohttp

    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout),
        response_class=_response_class(),
        trace_configs=[_retry_counter()],
    )


# -- the backend ---------------------------------------------------------------------------
class RayDataOptions(OpenAIOptions):
    """How the endpoint is reached, and by how many Ray workers."""

    operational = OpenAIOptions.operational | {"qps"}

    concurrency: int = Field(default=8, ge=1, description="Ray workers sending requests")
    qps: int | None = Field(default=None, ge=1, description="requests per second per Ray worker")


class RayDataBackend(Backend):
    """Any OpenAI-compatible endpoint, reached by a pool of Ray workers (Ray Data LLM's HTTP
    processor), on a local Ray instance or the cluster named by $RAY_ADDRESS."""

    name = "raydata"
    Options = RayDataOptions
    options: RayDataOptions
    constrains_output: ClassVar[bool] = True

    @classmethod
    def endpoint(cls, options: Any) -> str | None:
        return options.resolved_base_url()

    def setup(self) -> None:
        self.ray, self._config_cls, self._build = import_ray_data_llm()
        base_url = self.options.resolved_base_url() or DEFAULT_BASE_URL
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._api_key = self.options.resolved_api_key()

    def request(self, job: Job) -> dict[str, Any]:
        """The body the openai backend sends for this job (chat completions, strict JSON schema)."""
        params = job.params if self.teacher.send_seed else {k: v for k, v in job.params.items() if k != "seed"}
        schema = job.json_schema
        return {
            "model": self.model,
            "messages": list(job.messages),
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": schema.get("title", "reply"), "schema": schema, "strict": True},
            },
            **params,
        }

    def _processor(self, rows: int) -> Any:
        workers = max(1, min(self.options.concurrency, rows))
        config = self._config_cls(
            url=self.url,
            headers={"Authorization": f"Bearer {self._api_key}"},
            qps=self.options.qps,
            max_retries=self.teacher.max_retries,
            base_retry_wait_time_in_s=RETRY_WAIT_S,
            session_factory=functools.partial(_session_factory, self.options.timeout),
            batch_size=max(1, min(MAX_BATCH_ROWS, math.ceil(rows / workers))),
            concurrency=workers,
            http_request_stage={"num_cpus": WORKER_CPUS},
        )
        return self._build(config, preprocess=_to_request, postprocess=_from_response)

    def _rows(self, jobs: Sequence[Job], indices: Sequence[int]) -> Iterator[dict[str, Any]]:
        items = [{"index": i, "request": json.dumps(self.request(jobs[i]))} for i in indices]
        dataset = self.ray.data.from_items(items)
        yield from self._processor(len(items))(dataset).iter_rows()

    def complete(self, jobs: Sequence[Job], events: CallEvents) -> None:
        ensure_ray(self.ray)
        pending = list(range(len(jobs)))
        for attempt in range(self.teacher.max_retries + 1):
            if attempt:
                for _ in pending:
                    events.retried()
                time.sleep(min(RETRY_WAIT_S * 2**attempt, 20.0))
            pending = self._round(jobs, pending, events, last=attempt == self.teacher.max_retries)
            if not pending:
                return

    def _round(self, jobs: Sequence[Job], indices: list[int], events: CallEvents, last: bool) -> list[int]:
        """Send `indices` once; report every outcome except the transient errors to retry."""
        if events.stopped:
            for i in indices:
                events.done(i, NotRun("circuit breaker open"))
            return []
        unreported, retry = set(indices), []
        try:
            for row in self._rows(jobs, indices):
                i = int(row["index"])
                unreported.discard(i)
                for _ in range(int(row.get("retries") or 0)):  # made by Ray's HTTP stage
                    events.retried()
                outcome = self._outcome(row)
                if isinstance(outcome, TransientError) and not last:
                    retry.append(i)
                else:
                    events.done(i, outcome)
                if events.stopped:
                    break
        except TeachloopError:
            raise
        except Exception as exc:  # noqa: BLE001  (Ray's own retries are spent, or a worker died)
            reason = dataset_failure_reason(exc, self.teacher.max_retries)
            for i in sorted(unreported):
                events.done(i, TransientError(reason))
            return retry
        for i in sorted(unreported):  # left behind when the circuit breaker opened
            events.done(i, NotRun("circuit breaker open"))
        return retry

    @staticmethod
    def _outcome(row: dict[str, Any]) -> Completion | Exception:
        status, kind, message = int(row["status"]), str(row["error_type"]), str(row["error"])
        if status == 200:
            return Completion(
                text=str(row["text"]),
                prompt_tokens=int(row["prompt_tokens"]),
                completion_tokens=int(row["completion_tokens"]),
            )
        if status in FATAL_STATUSES or kind in FATAL_TYPES:
            raise TeachloopError(f"teacher endpoint refused the request ({status or kind}): {message}")
        if status in REJECTED_STATUSES or kind in REJECTED_TYPES:
            return RequestRejected(f"{status or kind}: {message}")
        return TransientError(f"{status or kind or 'error'}: {message}")


_LAST_FAULT = re.compile(r"Previous Exception: ([^.\n]+)")


def dataset_failure_reason(exc: Exception, max_retries: int) -> str:
    """One line for a failed dataset: the transport fault behind Ray's retries when it names one."""
    text = str(exc)
    fault = _LAST_FAULT.search(text)
    if fault:
        return f"no reply after {max_retries} retries of Ray's HTTP stage (last: {fault.group(1).strip()[:200]})"
    first_line = re.sub(r"\x1b\[[0-9;]*m", "", (text.strip().splitlines() or [""])[0])[:300]
    return f"Ray Data request failed: {type(exc).__name__}: {first_line}"
