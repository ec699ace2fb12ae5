"""Run the `teachloop` command in a fresh process without paying torch's import each time.

Most CLI tests spend more time importing torch, transformers, peft, trl and datasets (about
6 s on a CI machine) than running the command. A fork server imports those third-party
modules once, then forks a worker per command: the worker is a new process (its own pid,
environment, working folder, stdout and stderr files, exit code or signal) that imports
teachloop itself, fresh, and runs `teachloop.cli.main` as the installed script would.
Nothing of teachloop is loaded in the server, so no teachloop state is shared between runs.

A command whose environment changes what is read at import time (PYTHONPATH, the thread
counts, Hugging Face's settings) runs as an ordinary subprocess; so does every command when
TEACHLOOP_TEST_FORK=0. Tests that check the very first lines a new interpreter prints (the
import-time warnings) call subprocess themselves.

Protocol (one Unix-socket connection per command): the client sends one JSON line (argv,
cwd, env, stdout and stderr file paths); a supervisor forked for it forks the worker, answers
"pid N", waits for it and answers "status S" (the raw wait status).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

# imported once by the server: what every `teachloop run` loads (seconds of import each time)
PRELOAD = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "matplotlib.pyplot")
# attributes of lazily-loaded modules that the student and trainer modules reach at import
PRELOAD_ATTRIBUTES = {
    "transformers": ("AutoConfig", "AutoModelForCausalLM", "AutoTokenizer", "GenerationConfig",
                     "PreTrainedTokenizerBase", "PreTrainedTokenizerFast", "LlamaForCausalLM", "Trainer"),
    "trl": ("SFTConfig", "SFTTrainer", "DPOConfig", "DPOTrainer"),
}  # fmt: skip
# environment variables read when those modules import: a command that changes one runs unforked.
# Not among them: what vLLM's and Ray's imports set in the test process (LD_PRELOAD,
# LD_LIBRARY_PATH, PYTHONBREAKPOINT, TORCHINDUCTOR_*): a command started from a shell has none
# of them at start either; the worker's environment still holds them for its own children.
IMPORT_TIME_PREFIXES = ("OMP_", "MKL_", "KMP_", "HF_", "TRANSFORMERS_", "TORCH_", "TOKENIZERS_")
IMPORT_TIME_KEYS = {"PYTHONPATH", "PYTHONHOME", "PYTHONHASHSEED", "PYTHONWARNINGS", "PYTHONSAFEPATH"}

DISABLE = "TEACHLOOP_TEST_FORK"


def _import_time_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_PREFIXES) or k in IMPORT_TIME_KEYS}


class ForkServer:
    """The server process, started on first use and stopped with `close()`."""

    def __init__(self, folder: Path) -> None:
        self.socket_path = folder / "fork.sock"
        self.log = folder / "fork-server.log"
        self.env = dict(os.environ)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, str(self.socket_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env,
            )  # fmt: skip
        deadline = time.monotonic() + 300
        while not self.socket_path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the test fork server did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def serves(self, env: dict[str, str]) -> bool:
        if self.proc.poll() is not None:
            unforked["the server had stopped"] += 1
            return False
        ours, theirs = _import_time_env(self.env), _import_time_env(env)
        changed = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
        unforked.update(f"changed {key}" for key in changed)
        return not changed

    def run(
        self, args: list[str], *, cwd: Path | None, env: dict[str, str], timeout: float | None, text: bool
    ) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory(prefix="teachloop-fork-") as scratch:
            out, err = Path(scratch, "stdout"), Path(scratch, "stderr")
            umask = os.umask(0o022)
            os.umask(umask)
            request = {
                "argv": args, "cwd": str(cwd or os.getcwd()), "env": env, "umask": umask,
                "stdout": str(out), "stderr": str(err),
            }  # fmt: skip
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(str(self.socket_path))
                conn.sendall(json.dumps(request).encode() + b"\n")
                replies = conn.makefile("r")
                pid = int(replies.readline().split()[1])
                conn.settimeout(timeout)
                try:
                    line = replies.readline()
                except TimeoutError:
                    os.kill(pid, signal.SIGKILL)
                    raise subprocess.TimeoutExpired(["teachloop", *args], timeout) from None
            if not line.startswith("status "):
                raise RuntimeError(f"the test fork server lost the command {args}: {self.log.read_text()[-2000:]}")
            status = int(line.split()[1])
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            stdout, stderr = out.read_bytes(), err.read_bytes()
        if text:
            stdout, stderr = stdout.decode(errors="replace"), stderr.decode(errors="replace")
        return subprocess.CompletedProcess(["teachloop", *args], code, stdout, stderr)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


_server: ForkServer | None = None
forked = 0
unforked: Counter[str] = Counter()  # why commands ran as plain subprocesses: reason -> count


def summary() -> str:
    """One line for the end of the test session: how many commands were forked, and why others were not."""
    why = ", ".join(f"{reason} ({count})" for reason, count in sorted(unforked.items()))
    return f"teachloop commands forked: {forked}" + (f"; run unforked: {why}" if why else "")


def run_teachloop(
    args: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = 600,
    text: bool = True,
) -> subprocess.CompletedProcess:
    """`subprocess.run(["teachloop", *args], capture_output=True, ...)`, forked where it can be."""
    global _server, forked
    env = dict(os.environ if env is None else env)
    if os.environ.get(DISABLE) != "0":
        if _server is None:
            _server = ForkServer(Path(tempfile.mkdtemp(prefix="teachloop-forkserver-")))
        if _server.serves(env):
            forked += 1
            return _server.run(list(args), cwd=cwd, env=env, timeout=timeout, text=text)
    return subprocess.run(
        ["teachloop", *args], check=False, capture_output=True, text=text, cwd=cwd, env=env, timeout=timeout
    )


def close() -> None:
    global _server
    if _server is not None:
        _server.close()
        _server = None


# -- the server side --------------------------------------------------------------------------
def _serve(socket_path: str) -> dict:
    """Preload, then accept commands; returns (in a worker process only) the request to run."""
    import importlib

    for name in PRELOAD:
        module = importlib.import_module(name)
        for attribute in PRELOAD_ATTRIBUTES.get(name, ()):
            getattr(module, attribute)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path + ".part")
    os.rename(socket_path + ".part", socket_path)  # the client waits for the final name
    listener.listen(64)
    listener.settimeout(1.0)
    parent = os.getppid()
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            _reap()
            if os.getppid() != parent:  # the test session is gone (killed): so is its server
                os._exit(0)
            continue
        _reap()
        if os.fork() == 0:  # the supervisor of this command
            listener.close()
            return _supervise(conn)
        conn.close()


def _reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def _supervise(conn: socket.socket) -> dict:
    request = json.loads(conn.makefile("r").readline())
    worker = os.fork()
    if worker == 0:
        conn.close()
        return request
    try:
        conn.sendall(f"pid {worker}\n".encode())
        _, status = os.waitpid(worker, 0)
        conn.sendall(f"status {status}\n".encode())
    finally:
        os._exit(0)


def _become_the_command(request: dict) -> None:
    """In the worker: the state a new `teachloop` process would start with, then run it."""
    os.setsid()  # like a new process: not in the server's group (a test's killpg reaches only this)
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # TMPDIR is read again
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for fd, path, flags in (
        (0, os.devnull, os.O_RDONLY),
        (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    ):
        opened = os.open(path, flags, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    sys.argv = ["teachloop", *request["argv"]]
    code: int | str | None = 0
    try:
        from teachloop.cli import main

        main()
    except SystemExit as exc:
        code = exc.code
    except BaseException:  # noqa: BLE001 (as the interpreter does: the traceback, exit code 1)
        traceback.print_exc()
        code = 1
    # as the interpreter ends: threads joined, exit handlers run, output flushed; the module
    # teardown that follows (seconds with torch loaded) is skipped, it writes nothing
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    _become_the_command(_serve(sys.argv[1]))
