"""The help a user reads (bad input: test_bad_inputs.py)."""

import subprocess


def teachloop(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(["teachloop", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


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
