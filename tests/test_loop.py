"""The closed loop end to end: real TRL training of the embedded student."""

import json
import os
import signal
import subprocess
import time

import pytest
from conftest import SMALL_RUN, teachloop
from datasets import load_dataset

from teachloop.runs.loop.runner import MetricsRecord
from teachloop.runs.loop.store import RunStore
from teachloop.runs.reporting.report import load_metrics, weak_gain, weak_skills

pytestmark = pytest.mark.slow

COMPARED = ("iteration", "accuracy", "skill_accuracy", "examples_trained", "examples_generated")


def test_loop_teaches_the_weak_skills_and_writes_every_artifact(small_run):
    records = load_metrics(small_run)
    assert [r.iteration for r in records] == [0, 1, 2]
    weak = weak_skills(records)
    assert {"reverse", "max"} <= set(weak)  # the base checkpoint's deliberate gaps
    assert weak_gain(records) >= 0.2, [r.skill_accuracy for r in records]

    lines = [json.loads(line) for line in (small_run / "metrics.jsonl").read_text().splitlines()]
    for key in ("iteration", "accuracy", "skill_accuracy", "examples_trained", "phase_seconds", "overhead_seconds"):
        assert key in lines[0]
    # accumulate, and as many seed-pool examples replayed (replay: auto)
    assert lines[1]["examples_trained"] == 600 and lines[2]["examples_trained"] == 1200
    assert set(lines[1]["phase_seconds"]) == {"diagnose", "plan", "generate", "train", "evaluate"}
    assert all(0 <= line["overhead_seconds"] < sum(line["phase_seconds"].values()) for line in lines[1:])

    store = RunStore(small_run)
    for phase in ("eval", "feedback", "plan", "data", "train"):
        assert store.is_done(0, phase)
    assert store.is_done(2, "eval") and not store.is_done(2, "plan")
    assert (small_run / "skills.json").exists() and (small_run / "report.md").exists()
    assert (small_run / "learning_curves.png").stat().st_size > 10_000

    # generated data is a plain datasets-loadable file, with lineage on every row
    data = load_dataset("json", data_files=str(small_run / "iter_1" / "data" / "examples.jsonl"), split="train")
    assert len(data) == 300
    plan = json.loads((small_run / "iter_1" / "plan" / "plan.json").read_text())
    for row in data:
        assert row["lineage"]["iteration"] == 1 and row["lineage"]["policy"] == "stat-syn"
        assert row["lineage"]["skill"] in row["skills"]
    # the targeted policy spent its budget where the profile said
    alloc = {r["skill"]: r["count"] for r in plan["requests"]}
    feedback = json.loads((small_run / "iter_1" / "feedback" / "feedback.json").read_text())
    assert set(alloc) == set(feedback["profile"]["counts"])


def test_resume_after_sigkill_during_training_equals_uninterrupted_run(small_run, runs_root):
    args = ["teachloop", "run", "--out", str(runs_root), "--name", "killed", *SMALL_RUN, "--quiet"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    run_dir = runs_root / "killed"
    deadline = time.time() + 300
    try:
        while not list((run_dir / "iter_1").glob(".train.*.tmp")):  # iteration 1 is training
            assert proc.poll() is None, "run finished before it could be killed"
            assert time.time() < deadline, "training of iteration 1 never started"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    store = RunStore(run_dir)
    assert not store.is_done(1, "train") and not store.is_finished()

    out = teachloop("resume", str(run_dir), "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    assert store.is_finished()
    assert not list(run_dir.glob("iter_*/.*.tmp"))

    def comparable(run):
        return [r.model_dump(include=set(COMPARED)) for r in load_metrics(run)]

    assert comparable(run_dir) == comparable(small_run)
    for i in (0, 1):
        for name in ("examples.jsonl", "rejected.jsonl"):
            assert (run_dir / f"iter_{i}/data/{name}").read_text() == (small_run / f"iter_{i}/data/{name}").read_text()
    assert len(load_metrics(run_dir)) == 3  # no duplicated lines after the resume


def test_replace_and_restart_switches(runs_root):
    out = teachloop(
        "run", "--out", str(runs_root), "--name", "switches", "--iterations", "2", "--budget", "120",
        "--epochs", "1", "--data", "replace", "--student", "restart", "--policy", "uniform", "--quiet",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    store = RunStore(runs_root / "switches")
    for i in (0, 1):
        info = store.phase_record(i, "train").info
        loss, speed = info.pop("loss"), info.pop("throughput")
        assert info == {"examples": 240, "start": "base", "method": "full"}  # 120 new, 120 replayed
        assert set(loss) == {"sft"} and loss["sft"] > 0
        assert speed["sft"]["examples"] == 240 and speed["sft"]["tokens"] > 0 and speed["sft"]["peak_gb"] > 0
    records = load_metrics(runs_root / "switches")
    assert [r.examples_trained for r in records] == [0, 240, 240]
    assert isinstance(records[0], MetricsRecord)


def test_finished_run_resumes_to_a_no_op_and_reports(small_run):
    before = (small_run / "metrics.jsonl").read_text()
    out = teachloop("resume", str(small_run), "--quiet")
    assert out.returncode == 0 and (small_run / "metrics.jsonl").read_text() == before
    out = teachloop("report", str(small_run))
    assert out.returncode == 0 and "reverse*" in out.stdout and "weak at iteration 0" in out.stdout


def test_resume_with_more_iterations_extends_a_finished_run_like_one_planned_that_long(tmp_path):
    common = ["--budget", "40", "--epochs", "1", "--env-option", "eval_per_skill=4", "--out", str(tmp_path), "--quiet"]
    assert teachloop("run", "--name", "long", "--iterations", "2", *common).returncode == 0
    assert teachloop("run", "--name", "short", "--iterations", "1", *common).returncode == 0
    out = teachloop("resume", str(tmp_path / "short"), "--iterations", "2", "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    extended, planned = (load_metrics(tmp_path / name) for name in ("short", "long"))
    assert [r.skill_accuracy for r in extended] == [r.skill_accuracy for r in planned] and len(extended) == 3
    refused = teachloop("resume", str(tmp_path / "short"), "--iterations", "1", "--quiet")
    assert refused.returncode == 2 and "extended, never shortened" in refused.stderr


def test_the_plan_line_has_no_dangling_separator():
    from teachloop.runs.loop.runner import plan_summary
    from teachloop.types import DataPlan, GenerationRequest

    pool_only = DataPlan(policy="none", iteration=0, pool_samples=60)
    assert plan_summary(pool_only) == "60 examples from the pool"
    both = DataPlan(policy="p", iteration=0, requests=[GenerationRequest(skill="max", count=3)], pool_samples=1)
    assert plan_summary(both) == "max:3; 1 example from the pool"
    assert plan_summary(DataPlan(policy="p", iteration=0)) == "no new data"
