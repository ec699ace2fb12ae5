"""A new environment is one class and one entry point: the example package
`examples/plugin-environment` (integer arithmetic, four skills in a two-level tree) is
installed, shown, run with the embedded student, and refuses a bad option in one line."""

import json

import pytest
from conftest import installed_example, teachloop

pytestmark = pytest.mark.slow

SKILLS = {"add", "sub", "mul", "div"}


def test_environment_plugin_installs_shows_runs_and_refuses_bad_options(tmp_path):
    with installed_example("plugin-environment", "teachloop-arithmetic", tmp_path):
        assert "arithmetic" in teachloop("environments", "list").stdout.split()
        shown = teachloop("environments", "show", "arithmetic")
        assert shown.returncode == 0, shown.stderr
        assert "  max_operand: int = 20\n      largest operand" in shown.stdout
        assert "  generate(skill, n, rng)\n" in shown.stdout and "  check(example)\n" in shown.stdout

        out = teachloop(
            "run", "--env", "arithmetic", "--env-option", "eval_per_skill=5", "--env-option", "pool_per_skill=5",
            "--env-option", "max_operand=9", "--iterations", "1", "--budget", "24", "--epochs", "1",
            "--out", str(tmp_path / "runs"), "--name", "arith", "--quiet",
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        run = tmp_path / "runs" / "arith"
        assert "max_operand: 9" in (run / "config.yaml").read_text()  # typed, not the text '9'
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert [r["iteration"] for r in records] == [0, 1]
        assert SKILLS <= set(records[0]["skill_accuracy"])
        data = [json.loads(line) for line in (run / "iter_0" / "data" / "examples.jsonl").read_text().splitlines()]
        assert len(data) == 24 and {s for ex in data for s in ex["skills"]} <= SKILLS
        assert all(ex["prompt"].split()[0] in SKILLS for ex in data)

        bad = teachloop("run", "--env", "arithmetic", "--env-option", "max_operand=1", "--out", str(tmp_path / "no"))
        assert bad.returncode == 2, bad.stderr[-2000:]
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: environment 'arithmetic': max_operand: Input should be")
        unknown = teachloop(
            "run", "--env", "arithmetic", "--env-option", "max_operands=9", "--out", str(tmp_path / "no")
        )
        assert unknown.returncode == 2 and "did you mean 'max_operand'?" in unknown.stderr
        assert not (tmp_path / "no").exists()
    assert "arithmetic" not in teachloop("environments", "list").stdout.split()
