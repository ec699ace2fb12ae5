"""The engines' own output (vLLM, Ray, Triton) goes to the run's logs/engines.log, off the
terminal: what this process and the processes it starts write while an engine starts, and
what the engines' loggers say later. A fatal engine error still ends as teachloop's one
`error:` line, with the cause the engine logged and where its log is. Cheap: a fake `vllm`
package stands in for the real one (tests/test_real_teacher.py checks a real engine)."""

import json
import logging
import subprocess
import sys
import textwrap

import pytest
from conftest import teachloop

from teachloop.agents.teacher import TeacherConfig, TeacherLLM
from teachloop.agents.teacher.backends import Backend, Completion
from teachloop.agents.teacher.backends.vllm_local import _reporting
from teachloop.inference import engine_logs
from teachloop.inference.vllm_options import engine_failure

CHILD = (
    "import sys; print('(EngineCore pid=1) INFO child says hello'); "
    "print('Triton is installed, but doesn\\'t include CPU backend.', file=sys.stderr); "
    "print('ValueError: No available memory for the cache blocks', file=sys.stderr)"
)


@pytest.fixture
def routed(tmp_path, monkeypatch):
    monkeypatch.delenv(engine_logs.VERBOSE_ENV, raising=False)
    path = tmp_path / "run" / engine_logs.ENGINE_LOG
    engine_logs.route(path)
    yield path
    engine_logs.route(None)


def test_what_an_engine_and_its_processes_write_goes_to_the_log_and_teachloop_keeps_the_terminal(routed, capfd):
    with engine_logs.engine_output("starting a fake engine") as log:
        print("printed by this process while the engine starts")
        subprocess.run([sys.executable, "-c", CHILD], check=True)  # a process the engine starts
        logging.getLogger("vllm.engine").warning("vllm logger during start-up")
    logging.getLogger("vllm.engine").warning("vllm logger later")
    logging.getLogger("ray.data").warning("ray logger later")
    print("teachloop's own line")
    terminal = capfd.readouterr()
    assert terminal.out == "teachloop's own line\n" and terminal.err == ""
    text = routed.read_text()
    for line in ("child says hello", "Triton is installed", "vllm logger during start-up", "vllm logger later"):
        assert line in text
    assert "ray logger later" in text and "starting a fake engine" in text
    assert log.last_error() == "ValueError: No available memory for the cache blocks"
    message = engine_failure("the fake engine", RuntimeError("Engine core initialization failed"), None, log=log)
    assert "No available memory for the cache blocks" in message and str(routed) in message


def test_moving_the_log_keeps_the_engines_writing_to_it(routed, tmp_path):
    with engine_logs.engine_output("start"):
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.readline(); print('after the move')"], stdin=subprocess.PIPE
        )
    moved = tmp_path / "elsewhere" / "engines.log"
    assert engine_logs.move(moved) == moved and not routed.exists()
    child.communicate(b"go\n")
    logging.getLogger("vllm").warning("logged after the move")
    assert "after the move" in moved.read_text() and "logged after the move" in moved.read_text()


def test_a_block_that_wrote_nothing_leaves_no_file(routed):
    with engine_logs.engine_output("refused before anything loaded"):
        pass
    assert not routed.exists() and engine_logs.written() is None


def test_an_engine_logging_after_its_run_finds_the_log_folder_made_not_an_error(routed):
    # the route outlives an in-process run; a library that logs at import (vLLM, through TRL) must
    # not fail because the run's logs/ folder was never made (CI: test_distill after test_budget)
    assert not routed.parent.exists()
    logging.getLogger("vllm").warning("late line")
    assert "late line" in routed.read_text()


def test_without_a_run_folder_or_with_verbose_nothing_is_redirected(tmp_path, monkeypatch, capfd):
    engine_logs.route(None)
    with engine_logs.engine_output() as log:
        subprocess.run([sys.executable, "-c", CHILD], check=True)
    assert "child says hello" in capfd.readouterr().out and log.path is None
    monkeypatch.setenv(engine_logs.VERBOSE_ENV, "terminal")  # -v
    assert engine_logs.route(tmp_path / "engines.log") is None


def test_the_vllm_progress_shim_reports_each_finished_request():
    class Events:
        reported = 0

        def progressed(self, count):
            self.reported += count

    events = Events()
    make = _reporting(events)
    assert make(["a", "b"], desc="Rendering prompts") == ["a", "b"]  # rendering passes through
    bar = make(total=3, desc="Processed prompts", dynamic_ncols=True, postfix="")
    for _ in range(3):
        bar.update(1)
        assert bar.format_dict["elapsed"] > 0
    bar.close()
    assert events.reported == 3


class _Batch(Backend):
    """Says every job finished before it reports any outcome, as in-process vLLM does."""

    name = "batch-test"

    def complete(self, jobs, events):
        events.progressed(len(jobs))
        for i, _ in enumerate(jobs):
            events.done(i, Completion(text=json.dumps({"ok": True})))


class _Counter:
    def __init__(self, total):
        self.total, self.n = total, 0

    def update(self, n=1):
        self.n += n


def test_the_teacher_client_moves_a_progress_bar_once_per_call_and_cache_hit(tmp_path):
    from teachloop.agents.teacher.client import ReadyCheck

    cfg = TeacherConfig(backend="openai", model="m")
    teacher = TeacherLLM(cfg, run_dir=tmp_path, backend=_Batch(teacher=cfg, model="m"))
    conversations = [[{"role": "user", "content": f"q{i}"}] for i in range(5)]
    bar = _Counter(5)
    teacher.structured(conversations, ReadyCheck, progress=bar)
    assert bar.n == 5  # reported finished, then done: counted once
    again = _Counter(5)
    teacher.structured(conversations, ReadyCheck, progress=again)
    assert again.n == 5 and teacher.ledger.cache_hits == 5


FAKE_VLLM = """
import logging, subprocess, sys

class LLM:
    def __init__(self, **options):
        print("(MainProcess pid=1) INFO 12-03 10:00:00 [api_utils.py:286] non-default args")
        logging.getLogger("vllm.engine").warning("WARNING from the vllm logger")
        subprocess.run([sys.executable, "-c", {child!r}])
        raise RuntimeError("Engine core initialization failed. See root cause above. Failed core proc(s): {{}}")
"""


def test_a_vllm_that_cannot_start_is_one_error_line_with_the_cause_and_the_log(tmp_path, monkeypatch):
    fake = tmp_path / "fake"
    (fake / "vllm").mkdir(parents=True)
    (fake / "vllm" / "__init__.py").write_text(textwrap.dedent(FAKE_VLLM.format(child=CHILD)))
    model = tmp_path / "teacher-model"  # enough of a checkpoint for the checks before the engine starts
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 1}))
    (model / "chat_template.jinja").write_text("{{ messages }}")
    monkeypatch.setenv("PYTHONPATH", str(fake))
    out = teachloop("run", "--out", str(tmp_path / "runs"), "--name", "never", "--teacher", f"vllm:{model}")
    assert out.returncode == 2, out.stderr[-3000:]
    terminal = (out.stdout + out.stderr).splitlines()
    errors = [line for line in terminal if line.startswith("error: ")]
    log = tmp_path / "runs" / "never.engines.log"  # beside the run folder, which was never made
    assert len(errors) == 1 and "No available memory for the cache blocks" in errors[0], terminal
    assert f"engine log: {log}" in " ".join(out.stderr.split()), out.stderr
    noise = [line for line in terminal if any(word in line for word in ("INFO", "WARNING", "Triton", "Traceback"))]
    assert not noise, noise
    assert "child says hello" in log.read_text() and "WARNING from the vllm logger" in log.read_text()
    assert not (tmp_path / "runs" / "never").exists()
