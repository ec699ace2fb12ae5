"""Bad input gets a clear one-line error and a non-zero exit (run as a user would)."""

import subprocess

import pytest


def teachloop(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(["teachloop", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--policy", "nope"], "error: unknown policy 'nope'; available:"),
        (["run", "--env", "atlantis"], "error: unknown environment 'atlantis'; available: code, jsonl, math, skillworld"),
        (["run", "--iterations", "0"], "error: invalid config (defaults): iterations: Input should be greater"),
        (["run", "--data", "sometimes"], "error: invalid config (defaults): data: Input should be 'accumulate'"),
        (["run", "--config", "missing.yaml"], "error: config file missing.yaml does not exist"),
        (["resume", "."], "error: . is not a teachloop run folder"),
        (["report", "nowhere"], "error: nowhere does not exist or is not a folder"),
        (["run", "--eval-backend", "raydata"], "error: eval_backend raydata serves LoRA adapters: it needs train"),
    ],
)
def test_bad_input_one_line_error(tmp_path, args, message):
    out = teachloop(*args, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), out.stderr
    assert not (tmp_path / "runs").exists()  # nothing written for a refused run


def test_help_explains_every_option():
    out = teachloop("run", "--help")
    assert out.returncode == 0
    for option in ("--config", "--out", "--policy", "--iterations", "--budget", "--data", "--student", "--seed"):
        assert option in out.stdout
    assert "accumulate" in out.stdout and "restart" in out.stdout
    text = " ".join(out.stdout.split())  # help is wrapped to the terminal's width
    assert "[default: 600]" in text and "[default: 4]" in text  # defaults are shown, not eaten as markup
    top = teachloop("--help")
    for command in ("run", "resume", "report", "policies", "build-base"):
        assert command in top.stdout
