"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM's `vllm serve`, ...): async client,
bounded concurrency, tenacity retries on transport faults honouring `Retry-After`."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_serializer, field_validator
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from teachloop import stopping
from teachloop.agents.teacher.backends.base import (
    Backend,
    BackendOptions,
    CallEvents,
    Completion,
    Job,
    NotRun,
    RequestRejected,
    TransientError,
)
from teachloop.errors import TeachloopError
from teachloop.io import REDACTED

MAX_RETRY_AFTER = 60.0


class OpenAIOptions(BackendOptions):
    """How an OpenAI-compatible endpoint is reached."""

    operational = frozenset({"base_url", "api_key", "concurrency", "timeout"})

    base_url: str | None = Field(default=None, description="default: $OPENAI_BASE_URL, else the OpenAI API")
    api_key: SecretStr | None = Field(
        default=None,
        description="default: $OPENAI_API_KEY, else 'EMPTY'. Never written to disk: the run's config records "
        "only that one was given, so a resumed run needs $OPENAI_API_KEY",
    )
    concurrency: int = Field(default=8, ge=1, description="requests in flight at once")
    timeout: float = Field(default=60.0, gt=0, description="seconds per request")

    @field_validator("base_url")
    @classmethod
    def _a_url(cls, value: str | None) -> str | None:
        problem = url_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @field_serializer("api_key")
    def _never_the_key(self, value: SecretStr | None, info: Any) -> str | None:
        """REDACTED in every dump, unless the dump is handed to another process in memory
        (`context={"reveal_secrets": True}`: bench workers)."""
        if value is None:
            return None
        return value.get_secret_value() if (info.context or {}).get("reveal_secrets") else REDACTED

    def resolved_base_url(self) -> str:
        """The configured URL, else $OPENAI_BASE_URL; "" means the client's default (OpenAI).
        A $OPENAI_BASE_URL that is not a URL is a TeachloopError (the option is checked when given)."""
        if self.base_url:
            return self.base_url
        url = os.environ.get("OPENAI_BASE_URL") or ""
        problem = url_problem(url) if url else None
        if problem:
            raise TeachloopError(f"$OPENAI_BASE_URL {url!r}: {problem}")
        return url

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


def url_problem(value: str) -> str | None:
    """Why `value` is not an endpoint's base URL (http or https, with a host), None when it is one:
    a malformed URL is refused when it is given, not after a connection attempt times out."""
    parts = urlsplit(value.strip())
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return "not a URL: its port is not a number (write http://HOST:PORT/v1, e.g. http://127.0.0.1:8000/v1)"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not a URL (write http://HOST:PORT/v1, e.g. http://127.0.0.1:8000/v1)"
    return None


class OpenAIBackend(Backend):
    """Any OpenAI-compatible chat endpoint (OpenAI, `vllm serve`, ...): async requests, a
    bounded number in flight, rate limits and 5xx retried with backoff honouring Retry-After."""

    name = "openai"
    Options = OpenAIOptions
    options: OpenAIOptions
    constrains_output: ClassVar[bool] = True

    @classmethod
    def endpoint(cls, options: Any) -> str | None:
        return options.resolved_base_url()

    def setup(self) -> None:
        self.base_url = self.options.resolved_base_url() or None
        self._api_key = self.options.resolved_api_key()

    def _client(self) -> Any:
        from openai import AsyncOpenAI

        return AsyncOpenAI(base_url=self.base_url, api_key=self._api_key, timeout=self.options.timeout, max_retries=0)

    async def _one(self, client: Any, job: Job) -> Completion:
        import openai

        params = job.params if self.teacher.send_seed else {k: v for k, v in job.params.items() if k != "seed"}
        schema = job.json_schema
        try:
            response = await client.chat.completions.create(
                model=self.model,
                messages=list(job.messages),
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": schema.get("title", "reply"), "schema": schema, "strict": True},
                },
                **params,
            )
        except openai.RateLimitError as exc:
            raise TransientError(f"429 rate limited: {exc.message}", _retry_after(exc.response)) from None
        except openai.APIStatusError as exc:
            if exc.status_code in (408, 409) or exc.status_code >= 500:
                raise TransientError(f"{exc.status_code} error", _retry_after(exc.response)) from None
            if exc.status_code in (400, 413, 422):
                raise RequestRejected(f"{exc.status_code}: {exc.message}") from None
            raise TeachloopError(f"teacher endpoint refused the request ({exc.status_code}): {exc.message}") from None
        except openai.APITimeoutError as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from None
        except openai.APIConnectionError as exc:
            cause = _connect_failure(exc)
            if cause is not None:  # nothing listens there, or the host has no address
                raise Unreachable(f"{type(exc).__name__}: {cause}") from None
            raise TransientError(f"{type(exc).__name__}: {exc}") from None
        except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError) as exc:
            raise TransientError(f"unreadable response body: {exc}") from None
        if not getattr(response, "choices", None):
            raise TransientError("response without choices")
        usage = response.usage
        return Completion(
            text=response.choices[0].message.content or "",
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        )

    def complete(self, jobs: Sequence[Job], events: CallEvents) -> None:
        async def run_all() -> None:
            client = self._client()
            semaphore = asyncio.Semaphore(self.options.concurrency)
            # the start-up check asks once: a refused connection is known at once, not after retries
            fail_fast = bool(getattr(events, "fail_fast", False))

            def worth_retrying(exc: BaseException) -> bool:  # none once a stop signal came
                if stopping.requested() is not None:
                    return False
                return isinstance(exc, TransientError) and not (fail_fast and isinstance(exc, Unreachable))

            async def run(i: int, job: Job) -> None:
                async with semaphore:
                    if events.stopped:
                        events.done(i, NotRun("circuit breaker open or a stop signal"))
                        return
                    if hasattr(events, "starting"):  # optional: lets a stop tell in flight from not sent
                        events.starting(i)
                    try:
                        async for attempt in AsyncRetrying(
                            retry=retry_if_exception(worth_retrying),
                            wait=wait_retry_after,
                            stop=stop_after_attempt(self.teacher.max_retries + 1),
                            before_sleep=lambda state: events.retried(),
                            reraise=True,
                        ):
                            with attempt:
                                result = await self._one(client, job)
                    except (TransientError, RequestRejected) as exc:  # recorded and skipped
                        events.done(i, exc)
                        return
                    events.done(i, result)

            try:
                await asyncio.gather(*(run(i, job) for i, job in enumerate(jobs)))
            finally:
                await client.close()

        run_coroutine(run_all())


class Unreachable(TransientError):
    """The endpoint could not be connected to (connection refused, unknown host): retried
    during a run (a server may be restarting), not by the start-up check."""


def _connect_failure(exc: BaseException) -> str | None:
    """What a failed connection ran into ('connection refused by 127.0.0.1:9'), None when the
    error is not a failure to connect (a dropped connection, a broken reply)."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for link in chain:
        if isinstance(link, ConnectionRefusedError):
            return f"connection refused ({link.strerror or link})"
        if isinstance(link, socket.gaierror):
            return f"unknown host ({link.strerror or link})"
    if any(type(link).__name__ == "ConnectError" for link in chain):
        return f"cannot connect ({chain[-1]})"
    return None


def run_coroutine(coro: Any) -> None:
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


def wait_retry_after(state: Any) -> float:
    """The server's Retry-After when it sent one, else exponential backoff with jitter."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, TransientError) and exc.retry_after is not None:
        return exc.retry_after
    return _exponential(state)
