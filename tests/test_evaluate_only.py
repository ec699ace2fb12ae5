"""`teachloop run --iterations 0`: a baseline. It evaluates the starting student (iteration 0's
evaluation and its report) and stops: nothing is planned, generated or trained."""

import json
from pathlib import Path

import pytest
from conftest import teachloop


@pytest.mark.slow  # a run: evaluation of the embedded student
def test_iterations_0_evaluates_the_starting_student_and_stops(tmp_path: Path) -> None:
    out = teachloop("run", "--iterations", "0", "--out", str(tmp_path), "--name", "base")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "evaluate only (--iterations 0)" in " ".join((out.stdout + out.stderr).split())
    run = tmp_path / "base"
    assert sorted(p.name for p in run.glob("iter_*")) == ["iter_0"]
    assert sorted(p.name for p in (run / "iter_0").iterdir()) == ["eval"]  # no feedback, plan, data or train
    assert (run / "iter_0" / "eval" / "attempts.jsonl").is_file()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [0] and records[0]["examples_trained"] == 0
    assert f"{records[0]['accuracy']:.3f}" in out.stdout and "mean gain" not in out.stdout
    assert (run / "report.md").is_file() and json.loads((run / "run.json").read_text())
    again = teachloop("resume", str(run))  # finished: nothing is redone
    assert again.returncode == 0 and "finished already" in " ".join((again.stdout + again.stderr).split()), again
