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
