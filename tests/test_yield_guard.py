"""A run never trains on nothing silently: low yield and a teacher that is down stop it
with a one-line error naming the file to read, and `resume` continues once the cause is
fixed, without paying for a teacher call twice."""

import json

import pytest
from conftest import teachloop
from fault_server import FaultServer

from teachloop.agents.teacher import TeacherConfig, TeacherLLM
from teachloop.errors import RunStopped
from teachloop.inference.vllm_server import free_port
from teachloop.runs.loop.store import RunStore
from teachloop.runs.reporting.report import load_metrics
from teachloop.types import Example, GenerationResult, Rejected

SMALL = "environment_options: {eval_per_skill: 5, pool_per_skill: 5}\nreplay: 8\n"


def small_config(tmp_path, extra: str = "") -> str:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL + extra)
    return str(path)


def one_line_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


def test_yield_counts_rejections_by_reason():
    ex = Example(prompt="p", answer="a")
    result = GenerationResult(
        examples=[ex] * 3,
        rejected=[Rejected(example=ex, reason="verification: checker disagrees")] * 4
        + [Rejected(example=ex, reason="duplicate: prompt already generated")],
        shortfall={"copy": 2},
    )
    data_yield = result.data_yield(asked=10)
    assert data_yield.ratio == pytest.approx(0.3)
    assert data_yield.rejected == {"verification": 4, "duplicate": 1} and data_yield.unfilled == 2
    assert data_yield.summary() == "kept 3 of 10 (30%); rejected: verification 4, duplicate 1; unfilled 2"


def test_circuit_breaker_stops_after_consecutive_failures_and_names_the_log(tmp_path):
    with FaultServer(["500"] * 50) as server:
        cfg = TeacherConfig(
            backend="openai", model="m", base_url=server.base_url, concurrency=1, max_retries=0,
            max_consecutive_failures=3,
        )  # fmt: skip
        client = TeacherLLM(cfg, run_dir=tmp_path)
        with pytest.raises(RunStopped, match="failed 3 calls in a row") as stop:
            client.structured([[{"role": "user", "content": f"q{i}"}] for i in range(10)], Example)
        assert server.total() == 3  # no call was started once the breaker opened
    assert str(tmp_path / "teacher_failures.jsonl") in str(stop.value)
    assert client.ledger.failures == 3


@pytest.mark.slow
def test_low_yield_stops_the_run_and_resume_accepts_it_without_repaying(tmp_path):
    # the fault server answers every request for a skill with the same minimal item of its form:
    # after the first of each of the 8 skills, every new example is a duplicate: 8 of 40
    with FaultServer() as server:
        args = [
            "--out", str(tmp_path), "--name", "low", "--iterations", "1", "--budget", "40", "--epochs", "1",
            "--policy", "uniform",
            "--teacher", "openai:fake", "--teacher-base-url", server.base_url, "--verify", "none", "--quiet",
            "--config", small_config(tmp_path),
        ]  # fmt: skip
        out = teachloop("run", *args)
        assert out.returncode == 2
        error = one_line_error(out.stderr)
        run = tmp_path / "low"
        assert "kept 8 of 40 (20%); rejected: duplicate 32" in error and "below min_yield 25%" in error
        assert str(run / "iter_0" / "data" / "rejected.jsonl") in error and "--min-yield 0" in error
        store = RunStore(run)
        assert not store.is_done(0, "data") and not store.is_done(0, "train")  # nothing published as done
        failed = json.loads((run / "iter_0" / "data" / "failed.json").read_text())
        assert failed["info"]["yield"]["ratio"] == pytest.approx(8 / 40)
        assert failed["info"]["yield"]["skills"]["max"] == [1, 5]  # kept, asked
        assert len((run / "iter_0" / "data" / "rejected.jsonl").read_text().splitlines()) == 32  # left to read
        paid = server.total()

        resumed = teachloop("resume", str(run), "--min-yield", "0", "--quiet")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert server.total() == paid  # every reply came from the cache
    assert store.is_finished() and store.config().min_yield == 0
    assert store.phase_record(0, "data").info["yield"]["accepted"] == 8
    assert [r.data_yield for r in load_metrics(run)] == [None, pytest.approx(8 / 40)]


def teacher_args(tmp_path, name: str, base_url: str) -> list[str]:
    return [
        "--out", str(tmp_path), "--name", name, "--iterations", "1", "--budget", "6", "--epochs", "1",
        "--teacher", "openai:fake", "--teacher-base-url", base_url, "--verify", "none", "--quiet",
        "--config", small_config(tmp_path, "min_yield: 0\nteacher: {max_retries: 1, timeout: 2, concurrency: 1, max_consecutive_failures: 4}\n"),
    ]  # fmt: skip


def test_a_teacher_that_is_down_stops_the_run_before_anything_is_spent(tmp_path):
    port = free_port()  # nothing listens here: the start-up check cannot connect
    out = teachloop("run", *teacher_args(tmp_path, "down", f"http://127.0.0.1:{port}/v1"))
    assert out.returncode == 2
    error = one_line_error(out.stderr)
    assert f"teacher openai:fake at http://127.0.0.1:{port}/v1 failed its start-up check" in error
    assert "connection refused" in error and "is the server up" in error
    assert not (tmp_path / "down").exists()  # no run folder: nothing was evaluated or written


@pytest.mark.slow
def test_a_teacher_outage_stops_the_run_and_resume_finishes_it_once_the_teacher_is_back(tmp_path):
    # the teacher passes its start-up check, then fails every call (two 500s each: one retry)
    with FaultServer(["500"] * 8) as server:
        out = teachloop("run", *teacher_args(tmp_path, "outage", server.base_url))
        assert out.returncode == 2
        error = one_line_error(out.stderr)
        run = tmp_path / "outage"
        assert "teacher openai:fake failed 4 calls in a row" in error and "500 error" in error
        assert str(run / "teacher_failures.jsonl") in error
        store = RunStore(run)
        assert store.is_done(0, "plan") and not store.is_done(0, "data")  # the outage is not published as done

        resumed = teachloop("resume", str(run), "--quiet")  # the teacher is back: the 500s are spent
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert server.total() == 8 + 6 and server.ready_checks == 2
    skills = store.phase_record(0, "plan").info["allocation"]  # one minimal item per skill, then duplicates
    assert store.is_finished() and store.phase_record(0, "data").info["yield"]["accepted"] == len(skills) > 1


def test_a_generator_that_runs_out_is_named_as_such_with_the_shortfall_per_skill(tmp_path):
    """No teacher in the run: the message names the engine, the skills it fell short on and
    what to change, and says nothing of teachers."""
    from typer.testing import CliRunner

    from teachloop.agents.engines import ENGINES, BaseEngine
    from teachloop.cli import app
    from teachloop.types import GenerationResult

    class Dry(BaseEngine):
        """Makes nothing: every slot unfilled, as a generator with no new items left."""

        name = "dry"

        def generate(self, plan, env, ctx):
            return GenerationResult(shortfall={r.skill or "*": r.count for r in plan.requests})

    ENGINES.register("dry", Dry)
    try:
        result = CliRunner().invoke(app, [
            "run", "--engine", "dry", "--policy", "uniform", "--iterations", "1", "--budget", "16", "--quiet",
            "--config", small_config(tmp_path), "--out", str(tmp_path), "--name", "dry",
        ])  # fmt: skip
    finally:
        ENGINES.unregister("dry")
    message = str(result.exception)
    assert "the dry engine gave too little usable data (kept 0 of 16 (0%); unfilled 16; short of: " in message
    assert "a smaller --budget" in message and "teacher" not in message
