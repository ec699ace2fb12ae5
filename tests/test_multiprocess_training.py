"""train.processes > 1: the train phase runs under `accelerate launch` (here 2 CPU processes
over gloo), its checkpoint is an ordinary one, and a failed or extended run resumes."""

from pathlib import Path

import pytest
import yaml
from conftest import teachloop

from teachloop.errors import ConfigError
from teachloop.runs.config import RunConfig
from teachloop.runs.loop.assemble import assemble_run
from teachloop.runs.loop.store import RunStore
from teachloop.runs.reporting.report import load_metrics
from teachloop.students.hf.student import TransformersStudent


def test_a_batch_that_does_not_split_or_a_missing_accelerate_config_fails_before_the_run(tmp_path):
    with pytest.raises(ConfigError, match="batch_size 64 does not split over 3 processes"):
        assemble_run(RunConfig(train={"processes": 3}), models=False)
    with pytest.raises(ConfigError, match="accelerate_config .*nowhere.yaml does not exist"):
        assemble_run(
            RunConfig(train={"processes": 2, "accelerate_config": tmp_path / "nowhere.yaml"}), models=False
        )
    assemble_run(RunConfig(train={"processes": 2}), models=False)


def edit_config(run_dir: Path, **train: object) -> None:
    path = run_dir / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["iterations"] = 2
    config["train"].update(train)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.mark.slow
def test_two_process_training_publishes_a_checkpoint_the_loop_continues_from(tmp_path):
    run_dir = tmp_path / "mp"
    out = teachloop(
        "run", "--out", str(tmp_path), "--name", "mp", "--iterations", "1", "--budget", "40", "--epochs", "1",
        "--batch-size", "8", "--train-processes", "2", "--quiet",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    store = RunStore(run_dir)
    info = store.phase_record(0, "train").info
    assert info["processes"] == 2 and info["loss"]["sft"] > 0
    train_dir = store.phase_dir(0, "train")
    assert (train_dir / "train-worker.log").is_file() and not (train_dir / "train-job.json").exists()

    student = TransformersStudent.load(train_dir / "model")  # an ordinary checkpoint
    assert all(isinstance(answer, str) for answer in student.answer(["copy: abc", "reverse: abc"]))
    assert [r.iteration for r in load_metrics(run_dir)] == [0, 1]

    # one more iteration, with an accelerate config its processes cannot start with
    broken = tmp_path / "broken-accelerate.yaml"
    broken.write_text("distributed_type: NOT_A_BACKEND\nnum_processes: 2\n")
    edit_config(run_dir, accelerate_config=str(broken))
    out = teachloop("resume", str(run_dir), "--quiet")
    log = store.phase_dir(1, "train") / "train-worker.log"
    assert out.returncode == 2
    assert f"read {log}" in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr[-3000:]
    assert log.is_file() and not store.is_done(1, "train")

    edit_config(run_dir, accelerate_config=None)
    out = teachloop("resume", str(run_dir), "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    assert store.phase_record(1, "train").info["processes"] == 2
    assert [r.iteration for r in load_metrics(run_dir)] == [0, 1, 2]
