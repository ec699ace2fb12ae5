"""An engine plug-in is one class and one entry point: examples/plugin-engine, installed with
pip, serves a real run's plans from a file and is listed, described and validated like the
built-in engines."""

import json
import random

import pytest
import yaml

from conftest import installed_example, teachloop
from teachloop.environments import get_environment

pytestmark = pytest.mark.slow


def write_bank(path, per_skill: int) -> set[str]:
    env = get_environment("skillworld")
    rng = random.Random(123)
    items = [ex for skill in env.skills.leaves() for ex in env.generate(skill, per_skill, rng)]
    path.write_text(
        "".join(json.dumps({"prompt": ex.prompt, "answer": ex.answer, "skills": ex.skills}) + "\n" for ex in items)
    )
    return {ex.prompt for ex in items}


def test_engine_plugin_installs_and_serves_a_run_from_its_file(tmp_path):
    bank = tmp_path / "bank.jsonl"
    prompts = write_bank(bank, per_skill=40)
    with installed_example("plugin-engine", "teachloop-bank-engine", tmp_path):
        listed = teachloop("engines", "list")
        assert listed.returncode == 0 and "bank" in listed.stdout, listed.stderr
        shown = teachloop("engines", "show", "bank")
        assert shown.returncode == 0 and "file: " in shown.stdout and "reuse: bool = False" in shown.stdout

        run_args = ["run", "--engine", "bank", "--iterations", "2", "--budget", "40", "--epochs", "1",
                    "--env-option", "eval_per_skill=4", "--out", str(tmp_path / "runs"), "--quiet"]  # fmt: skip
        # a misspelt option is refused before anything runs, naming the right one
        typo = teachloop(*run_args, "--name", "typo", "--engine-option", f"fil={bank}")
        assert typo.returncode == 2 and "unknown option 'fil' (did you mean 'file'?)" in typo.stderr
        assert not (tmp_path / "runs" / "typo" / "iter_0").exists()

        out = teachloop(*run_args, "--name", "bank", "--engine-option", f"file={bank}")
        assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "runs" / "bank"
    assert yaml.safe_load((run / "config.yaml").read_text())["engine_options"] == {"file": str(bank)}
    drawn = []
    for i in (0, 1):
        rows = [json.loads(line) for line in (run / f"iter_{i}/data/examples.jsonl").read_text().splitlines()]
        generated = [r for r in rows if r["source"] == "generated"]
        assert generated and all(r["lineage"]["teacher"] == "bank" and r["prompt"] in prompts for r in generated)
        drawn.append({r["prompt"] for r in generated})
    assert not drawn[0] & drawn[1]  # each bank item is served once
