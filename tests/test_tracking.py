"""Experiment tracking: a run's metrics in a local trackio project, each iteration once,
never a secret; the other trackers fail before the run when their package is missing."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import teachloop

from teachloop.agents.teacher import TeacherConfig
from teachloop.errors import ConfigError
from teachloop.io import REDACTED
from teachloop.runs.bench.config import BenchConfig, plan_runs
from teachloop.runs.config import RunConfig
from teachloop.runs.loop.assemble import assemble_run
from teachloop.runs.loop.metrics import MetricsRecord
from teachloop.runs.loop.store import RunStore
from teachloop.runs.loop.tracking import RunTracking, TrackedRun, record_metrics
from teachloop.runs.reporting.report import load_metrics

# what trackio stored for a project's run, read through trackio's own storage API in a fresh
# process: trackio fixes its folder ($TRACKIO_DIR) when it is first imported
READ_BACK = """
import json, sys
from trackio.sqlite_storage import SQLiteStorage
project, run = sys.argv[1:]
print(json.dumps({
    "projects": SQLiteStorage.get_projects(),
    "runs": SQLiteStorage.get_runs(project),
    "logs": SQLiteStorage.get_logs(project, run),
    "config": SQLiteStorage.get_run_config(project, run),
}, default=str))
"""


def trackio_contents(project: str, run: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", READ_BACK, project, run], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_trackio_run_leaves_a_local_project_with_per_skill_curves(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))
    run_dir = tmp_path / "runs" / "tracked"
    out = teachloop(
        "run", "--out", str(tmp_path / "runs"), "--name", "tracked", "--iterations", "1", "--budget", "30",
        "--epochs", "1", "--env-option", "eval_per_skill=10", "--tracking", "trackio", "--quiet",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    records = load_metrics(run_dir)
    stored = trackio_contents("tracked", "tracked")  # project and run default to the run's name
    assert stored["projects"] == ["tracked"] and stored["runs"] == ["tracked"]
    logs = {row["step"]: row for row in stored["logs"]}
    assert sorted(logs) == [0, 1] == [r.iteration for r in records]
    for record in records:  # the per-skill curves, point for point what metrics.jsonl says
        row = logs[record.iteration]
        assert row["accuracy"] == record.accuracy
        assert {s: row[f"skill/{s}"] for s in record.skill_accuracy} == record.skill_accuracy
        assert set(record.node_accuracy) <= {k.removeprefix("skill/") for k in row if k.startswith("skill/")}
        assert row["time/evaluate"] == record.phase_seconds["evaluate"]
    assert records[1].train_loss is not None and logs[1]["train/loss"] == records[1].train_loss["sft"] > 0
    assert logs[1]["data/yield"] == records[1].data_yield and "train/loss" not in logs[0]
    assert stored["config"]["budget"] == 30 and stored["config"]["tracking"] == "trackio"

    again = teachloop("resume", str(run_dir), "--quiet")  # nothing new: nothing logged twice
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(trackio_contents("tracked", "tracked")["logs"]) == 2
    if importlib.util.find_spec("mlflow") is None:  # another tracker, its package missing: refused up front
        config = (run_dir / "config.yaml").read_text()
        refused = teachloop("resume", str(run_dir), "--tracking", "mlflow", "--quiet")
        assert refused.returncode == 2 and "pip install mlflow" in refused.stderr, refused.stderr[-2000:]
        assert (run_dir / "config.yaml").read_text() == config


# -- the run's side, with a tracker that records what it is given ------------------------------
class FakeTracker:
    def __init__(self, calls: list[tuple[Any, ...]]) -> None:
        self.calls = calls

    def start(self, run: TrackedRun, config: dict[str, Any], resume: bool) -> None:
        self.calls.append(("start", run, config, resume))

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.calls.append(("log", step, metrics))

    def finish(self) -> None:
        self.calls.append(("finish",))


def record(i: int, **extra: Any) -> MetricsRecord:
    return MetricsRecord(
        iteration=i, policy="uniform", accuracy=0.5 + i / 10, skill_accuracy={"copy": 0.25 * i, "max": 0.5},
        examples_trained=10 * i, examples_generated=10 * i, phase_seconds={"evaluate": 1.5}, overhead_seconds=0.1,
        **extra,
    )  # fmt: skip


def steps(calls: list[tuple[Any, ...]]) -> list[int]:
    return [c[1] for c in calls if c[0] == "log"]


@pytest.fixture
def store(tmp_path) -> RunStore:
    secret = TeacherConfig(backend="openai", model="m", api_key="sk-do-not-leak", price_prompt_per_mtok=2.0)
    config = RunConfig(name="r", out=tmp_path, tracking="trackio", teacher=secret)
    return RunStore.create(tmp_path / "r", config)


def test_each_iteration_is_logged_once_and_the_config_holds_no_secret(store, tmp_path):
    calls: list[tuple[Any, ...]] = []
    secret = TeacherConfig(backend="openai", model="m", api_key="sk-do-not-leak", price_prompt_per_mtok=2.0)
    config = RunConfig(name="r", out=tmp_path, tracking="trackio", teacher=secret)  # as given: the key in memory
    tracking = RunTracking(store, config, factory=lambda name, options: FakeTracker(calls))
    assert tracking.log([record(0)]) == [0]
    assert tracking.log([record(0), record(1)]) == [1]  # after the next evaluation: only the new one
    assert tracking.log([record(0), record(1)]) == []  # a resume with nothing new logs nothing
    assert steps(calls) == [0, 1]
    starts = [c for c in calls if c[0] == "start"]
    assert [c[3] for c in starts] == [False, True]  # a new tracker run once, then that one continued
    assert starts[0][1].project == starts[0][1].name == "r"
    assert "sk-do-not-leak" not in json.dumps([c[2] for c in starts])
    assert starts[0][2]["teacher"]["options"]["api_key"] == REDACTED

    # a resume that moves to another tracker or project gives it the whole history
    calls.clear()
    elsewhere = config.model_copy(update={"tracking_project": "elsewhere"})
    moved = RunTracking(store, elsewhere, factory=lambda name, options: FakeTracker(calls))
    assert moved.log([record(0), record(1)]) == [0, 1] and steps(calls) == [0, 1]


def test_a_failing_tracker_costs_a_warning_and_its_iterations_are_logged_later(store, caplog):
    calls: list[tuple[Any, ...]] = []

    class Down(FakeTracker):
        def log(self, metrics: dict[str, float], step: int) -> None:
            raise ConnectionError("tracker server down")

    assert RunTracking(store, store.config(), factory=lambda name, options: Down(calls)).log([record(0)]) == []
    assert "tracker server down" in caplog.text and calls[-1] == ("finish",)
    retry = RunTracking(store, store.config(), factory=lambda name, options: FakeTracker(calls))
    assert retry.log([record(0)]) == [0]
    assert [c[3] for c in calls if c[0] == "start"] == [False, True]  # the run that was opened is continued


def test_logged_values_name_skills_loss_yield_tokens_and_cost(store):
    config = store.config()
    metrics = record_metrics(
        record(1, data_yield=0.75, train_loss={"sft": 1.25, "dpo": 0.5},
               teacher={"calls": 3, "prompt_tokens": 1_000_000, "completion_tokens": 10}),
        config,
    )  # fmt: skip
    assert metrics["skill/copy"] == 0.25 and metrics["skill/max"] == 0.5 and metrics["accuracy"] == 0.6
    assert metrics["train/loss"] == 1.25 and metrics["train/dpo_loss"] == 0.5
    assert metrics["data/yield"] == 0.75 and metrics["teacher/prompt_tokens"] == 1_000_000
    assert metrics["teacher/cost"] == pytest.approx(2.0)  # 1M prompt tokens at 2.0 per million
    assert metrics["time/evaluate"] == 1.5
    assert "teacher/cost" not in record_metrics(record(1), config)


def test_a_run_folder_of_the_same_name_is_a_new_tracker_run(tmp_path):
    keys = []
    for attempt in ("a", "b"):
        config = RunConfig(name="same", out=tmp_path / attempt, tracking="trackio")
        store = RunStore.create(tmp_path / attempt / "same", config)
        keys += [RunTracking(store, config).run.key, RunTracking(store, config).run.key]
    assert keys[0] == keys[1] and keys[2] == keys[3] and keys[0] != keys[2]


def test_a_missing_tracker_package_fails_before_the_run_with_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match=r"tracking: wandb needs the wandb package: pip install wandb"):
        assemble_run(RunConfig(tracking="wandb"), models=False)
    assemble_run(RunConfig(tracking="none"), models=False)


def test_a_bench_tracks_every_cell_as_a_run_in_one_project(tmp_path):
    bench = BenchConfig(policies=["uniform", "stat-syn"], seeds=[0, 1], budget=10, iterations=1,
                        run={"tracking": "trackio"})  # fmt: skip
    configs = plan_runs(bench, tmp_path / "my-bench")
    assert {c.tracking_project for c in configs} == {"my-bench"}
    assert len({c.name for c in configs}) == 4
    untracked = plan_runs(BenchConfig(policies=["uniform"], seeds=[0], budget=10, iterations=1), Path(tmp_path))
    assert untracked[0].tracking == "none" and untracked[0].tracking_project is None
