"""Faults and bad input: a run killed anywhere (in any phase, at the very end, during a
resume) ends like an uninterrupted one; damaged or edited run folders, a second process
on the same run and bad options get a one-line `error:` and exit code 2; nothing that
finished is lost."""

import json
import os
import shutil
import signal
import subprocess

import pytest
from cli_fork import run_teachloop
from conftest import teachloop
from fault_server import FaultServer, copy_items

from teachloop.faults import KILL_AT
from teachloop.runs.loop.store import RunStore
from teachloop.runs.reporting.report import load_metrics

pytestmark = pytest.mark.slow

COMPARED = ("iteration", "accuracy", "skill_accuracy", "examples_trained", "examples_generated", "data_yield")




@pytest.fixture(scope="module")
def teacher_url():
    with FaultServer(content=copy_items) as server:
        yield server.base_url


def run_args(tmp_path, teacher_url) -> list[str]:
    config = tmp_path / "faults.yaml"
    config.write_text("environment_options: {eval_per_skill: 20, pool_per_skill: 20}\n")
    return [
        "--config", str(config), "--iterations", "2", "--budget", "24", "--epochs", "1", "--seed", "5",
        "--teacher", "openai:fake", "--teacher-base-url", teacher_url, "--verify", "none", "--quiet",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory, teacher_url):
    out = tmp_path_factory.mktemp("reference")
    done = teachloop("run", *run_args(out, teacher_url), "--out", str(out), "--name", "ref")
    assert done.returncode == 0, done.stderr[-3000:]
    return out / "ref"


def killed(args: list[str], point: str, tmp: os.PathLike) -> subprocess.CompletedProcess:
    return run_teachloop(args, env={**os.environ, KILL_AT: point, "TMPDIR": str(tmp)})


def assert_same_run(run, reference) -> None:
    assert RunStore(run).is_finished() and not list(run.glob("iter_*/.*.tmp"))
    assert [r.model_dump(include=set(COMPARED)) for r in load_metrics(run)] == [
        r.model_dump(include=set(COMPARED)) for r in load_metrics(reference)
    ]
    assert (run / "metrics.jsonl").read_text().count("\n") == 3
    for i in (0, 1):
        for name in ("examples.jsonl", "rejected.jsonl"):
            assert (run / f"iter_{i}/data/{name}").read_text() == (reference / f"iter_{i}/data/{name}").read_text()
    assert "| 2 |" in (run / "report.md").read_text()  # the last iteration is in the report


# every phase of both iterations, the final evaluation, the end-of-run metrics and the report
KILL_POINTS = [
    "eval@0", "feedback@0", "plan@0", "data@0", "train@0",
    "eval@1", "feedback@1", "plan@1", "data@1", "train@1", "eval@2", "metrics", "report",
]  # fmt: skip


def test_a_kill_at_every_point_and_during_every_resume_ends_like_an_uninterrupted_run(reference, teacher_url, tmp_path):
    """One run, killed at the first point; every resume is killed at the next one (so all but
    the first kill hit a resume); the last resume finishes it."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    run = tmp_path / "k"
    command = ["run", *run_args(tmp_path, teacher_url), "--out", str(tmp_path), "--name", "k"]
    for point in KILL_POINTS:
        out = killed(command, point, scratch)
        assert out.returncode == -signal.SIGKILL, (point, out.stderr[-2000:])
        assert RunStore(run).is_finished() == (point == "report"), point
        command = ["resume", str(run), "--quiet"]
    assert not (run / "report.md").exists()
    assert not list(scratch.glob("teachloop-*"))  # the trainer's scratch lives in the run's phase folder
    out = teachloop("resume", str(run), "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    assert_same_run(run, reference)


# -- damaged, edited or busy run folders --------------------------------------------------------
@pytest.fixture
def finished(small_run, tmp_path):
    """A private copy of the shared finished run, free to damage."""
    return shutil.copytree(small_run, tmp_path / "run")


def one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 2, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-3000:]
    return lines[0]


def test_the_end_of_run_window_loses_nothing(finished):
    metrics = (finished / "metrics.jsonl").read_text().splitlines()
    (finished / "metrics.jsonl").write_text("\n".join(metrics[:-1]) + "\n")
    marker = json.loads((finished / "run.json").read_text())
    del marker["finished"]
    (finished / "run.json").write_text(json.dumps(marker))
    out = teachloop("resume", str(finished), "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    assert (finished / "metrics.jsonl").read_text().splitlines() == metrics
    assert "| 2 |" in (finished / "report.md").read_text()


def test_a_cut_metrics_file_is_rebuilt_by_report_and_resume(finished):
    text = (finished / "metrics.jsonl").read_text()
    (finished / "metrics.jsonl").write_text(text[: len(text) - 40])
    out = teachloop("report", str(finished))
    assert out.returncode == 0, out.stderr[-3000:]
    assert (finished / "metrics.jsonl").read_text() == text
    (finished / "metrics.jsonl").write_text(text[:-40])
    assert teachloop("resume", str(finished), "--quiet").returncode == 0
    assert (finished / "metrics.jsonl").read_text() == text


@pytest.mark.parametrize("damage", ["cut", "last line removed"])
def test_a_damaged_phase_file_is_named_before_it_is_used(finished, damage):
    path = finished / "iter_1" / "data" / "examples.jsonl"
    text = path.read_text()
    path.write_text(text[:-25] if damage == "cut" else "".join(text.splitlines(keepends=True)[:-1]))
    for command in ("resume", "report"):
        error = one_line_error(teachloop(command, str(finished)))
        assert f"{path} was changed after its phase finished" in error and "restore it" in error


def test_a_marker_that_is_not_an_object_is_an_error(finished):
    (finished / "run.json").write_text("[1, 2]")
    assert "must hold a JSON object" in one_line_error(teachloop("report", str(finished)))


def test_a_removed_done_marker_redoes_its_phase(finished):
    plan = (finished / "iter_1" / "plan" / "plan.json").read_text()
    (finished / "iter_1" / "plan" / "done.json").unlink()
    out = teachloop("resume", str(finished), "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    assert RunStore(finished).is_done(1, "plan") and (finished / "iter_1" / "plan" / "plan.json").read_text() == plan


def test_an_edited_config_is_refused_unless_allowed(finished):
    config = finished / "config.yaml"
    config.write_text(config.read_text().replace("budget: 300", "budget: 50").replace("seed: 7", "seed: 8"))
    error = one_line_error(teachloop("resume", str(finished), "--quiet"))
    assert "was changed since the run started (budget, seed)" in error and "--allow-config-change" in error
    out = teachloop("resume", str(finished), "--allow-config-change", "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    changes = json.loads((finished / "run.json").read_text())["config_changes"]
    assert changes[0]["changed"] == ["budget", "seed"] and changes[0]["before"]["budget"] == 300


def test_a_second_process_on_a_run_is_refused(finished):
    with RunStore(finished).lock():
        error = one_line_error(teachloop("resume", str(finished), "--quiet"))
    assert f"run {finished} is in use by teachloop process {os.getpid()}" in error
    assert teachloop("resume", str(finished), "--quiet").returncode == 0  # free again once released


def test_resuming_a_finished_run_keeps_its_finish_time(finished):
    before = json.loads((finished / "run.json").read_text())["finished"]
    assert teachloop("resume", str(finished), "--quiet").returncode == 0
    assert json.loads((finished / "run.json").read_text())["finished"] == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "a-file"], "error: cannot create run folder a-file/"),
        (["--out", "/proc/teachloop"], "error: cannot create run folder /proc/teachloop/"),
        (["--env-option", "bogus=1"], "error: environment 'skillworld': unknown option 'bogus'; its options: eval_"),
        (["--student-model", "no/such-folder/x"], "error: model 'no/such-folder/x' not found"),
        (["--teacher", "vllm:missing.gguf"], "error: model 'missing.gguf' not found"),
    ],
)
def test_bad_run_options_are_one_line_errors_and_write_nothing(tmp_path, args, message):
    (tmp_path / "a-file").write_text("not a folder")
    out = teachloop("run", *args, "--iterations", "1", cwd=tmp_path)
    assert one_line_error(out).startswith(message)
    assert not (tmp_path / "runs").exists()


def test_run_folders_follow_the_umask(small_run, tmp_path):
    done = subprocess.run(
        ["teachloop", "run", "--iterations", "1", "--budget", "20", "--epochs", "1", "--quiet",
         "--out", str(tmp_path), "--name", "private"],
        capture_output=True, text=True, timeout=600, preexec_fn=lambda: os.umask(0o077),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    # small_run was made under the usual umask 022: a team can read it
    for root, mode, folder in ((small_run, 0o644, 0o755), (tmp_path / "private", 0o600, 0o700)):
        for path in (
            root / "config.yaml",
            root / "iter_0/eval/attempts.jsonl",
            root / "iter_0/train/model/model.safetensors",
        ):
            assert path.stat().st_mode & 0o777 == mode, (path, oct(path.stat().st_mode))
        for path in (root / "iter_0", root / "iter_0/train/model"):
            assert path.stat().st_mode & 0o777 == folder, (path, oct(path.stat().st_mode))
