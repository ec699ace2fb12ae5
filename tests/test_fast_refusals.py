"""Refusals that need no model come before torch loads (a second, not the 5-8 s torch and
transformers take), and a teacher that refuses connections is refused at once: not after the
start-up check's retries, and, in a bench, once for every run rather than by each run.

Each command runs in a fresh interpreter that reports, after the CLI has refused, whether
torch was imported; no timing is asserted."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from teachloop.agents.teacher import TeacherConfig, TeacherLLM
from teachloop.agents.teacher.backends.openai_api import OpenAIBackend
from teachloop.errors import ConfigError, TeachloopError
from teachloop.inference.vllm_server import free_port

REFUSE = """
import sys
from teachloop.cli import main
try:
    main(sys.argv[1:])
    code = 0
except SystemExit as exc:
    code = exc.code
print("torch-imported" if "torch" in sys.modules else "no-torch", code)
"""


def refuse(*args: str, cwd: Path) -> tuple[str, str]:
    """(the one error line, 'no-torch' or 'torch-imported') of a command that must be refused."""
    command = [sys.executable, "-c", REFUSE, *args]
    out = subprocess.run(command, check=False, capture_output=True, text=True, cwd=cwd, timeout=600)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-3000:]
    torch, code = out.stdout.split()[-2:]
    assert code == "2", out.stdout[-3000:]
    return lines[0], torch


def refused_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there


def test_a_teacher_that_refuses_connections_is_refused_before_torch_loads(tmp_path):
    url = refused_url()
    error, torch = refuse("run", "--teacher", "openai:m", "--teacher-base-url", url, "--out", "runs", cwd=tmp_path)
    assert f"teacher openai:m at {url} failed its start-up check: connection refused" in error
    assert torch == "no-torch"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--out", "a-file"], "a-file is a file, not a folder (check --out)"),
        (["--out", "a-file/below"], "a-file is a file, not a folder (check --out)"),
        (["--out", ".", "--name", "taken"], "run folder taken already exists and is not empty"),
        (["--out", "/proc/teachloop"], "/proc takes no new folder"),
    ],
    ids=["out-is-a-file", "out-under-a-file", "name-taken", "out-takes-no-folder"],
)
def test_a_bad_out_is_refused_before_torch_loads(tmp_path, args, expected):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    error, torch = refuse("run", *args, cwd=tmp_path)
    assert expected in error and torch == "no-torch"


def test_a_damaged_run_is_refused_by_resume_before_torch_loads(tmp_path, small_run):
    run = Path(shutil.copytree(small_run, tmp_path / "run"))
    with (run / "iter_0" / "eval" / "attempts.jsonl").open("a") as handle:
        handle.write("\n")
    config = (run / "config.yaml").read_text()
    error, torch = refuse("resume", "run", "--min-yield", "0.1", cwd=tmp_path)
    assert "attempts.jsonl was changed after its phase finished" in error and torch == "no-torch"
    assert (run / "config.yaml").read_text() == config  # refused before --min-yield was written


def test_a_bench_checks_its_teacher_once_before_any_run(tmp_path):
    url = refused_url()
    bench = {
        "policies": ["uniform", "stat-syn"],
        "seeds": [0, 1],
        "budget": 20,
        "iterations": 1,
        "teachers": {"down": {"backend": "openai", "model": "m", "base_url": url}, "gen": None},
    }
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(bench))
    error, torch = refuse("bench", "b.yaml", "--out", "bench", cwd=tmp_path)
    assert f"teacher openai:m at {url} failed its start-up check: connection refused" in error
    assert torch == "no-torch"  # no run was started, not even the teacher-less ones
    assert not (tmp_path / "bench").exists()  # no empty leaderboard left behind


def test_the_start_up_check_asks_a_refusing_endpoint_once(monkeypatch):
    """A run's retries (max_retries 6) are for a server that stumbles; the start-up check of one
    that refuses connections says so after one attempt."""
    calls = []
    one = OpenAIBackend._one

    async def counted(self, client, job):
        calls.append(job)
        return await one(self, client, job)

    monkeypatch.setattr(OpenAIBackend, "_one", counted)
    url = refused_url()
    client = TeacherLLM(TeacherConfig.from_spec("openai:m", base_url=url, max_retries=6))
    with pytest.raises(TeachloopError, match=r"failed its start-up check: APIConnectionError: connection refused"):
        client.start()
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("not-a-url", "not a URL"),
        ("127.0.0.1:8000/v1", "not a URL"),
        ("http://h:port/v1", "not a URL: its port is not a number"),
    ],
)
def test_a_malformed_base_url_is_refused_when_it_is_given(url, problem):
    with pytest.raises(ConfigError, match=f"base_url: {problem}"):
        TeacherConfig.from_spec("openai:m", base_url=url)
    assert TeacherConfig.from_spec("openai:m", base_url="https://api.example.com/v1").options.base_url
