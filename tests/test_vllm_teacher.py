"""The teacher on real vLLM: in-process `vllm.LLM` and a `vllm serve` endpoint on loopback.

The tiny teacher has random weights, so its content is nonsense; structured outputs make
it schema-valid, which is what the plumbing needs: validation, verification, skip
records, the cache and the ledger."""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import require_vllm, teachloop
from fault_server import GatedProxy
from pydantic import BaseModel, Field

from teachloop.agents.teacher import TeacherConfig, TeacherLLM
from teachloop.environments.skillworld import SkillWorld
from teachloop.runs.loop.store import RunStore
from teachloop.runs.reporting.report import load_metrics
from teachloop.skills.discovery import discover

pytestmark = pytest.mark.slow


class Pair(BaseModel):
    question: str = Field(max_length=30)
    answer: str = Field(max_length=10)


def test_in_process_vllm_backend_structured_outputs_and_skill_discovery(tiny_teacher, tmp_path):
    require_vllm()
    cfg = TeacherConfig(backend="vllm", model=tiny_teacher, max_tokens=400, temperature=0.8)
    teacher = TeacherLLM(cfg, run_dir=tmp_path)
    finished = []  # the progress bar moves as vLLM finishes each request of the batch

    class Bar:
        total = 6

        def update(self, n=1):
            finished.append(n)

    replies = teacher.structured(
        [[{"role": "user", "content": f"write pair {i}"}] for i in range(6)], Pair, progress=Bar()
    )
    assert all(isinstance(r, Pair) for r in replies)
    assert sum(finished) >= 6  # one per reply (more when a reply was re-asked)
    assert teacher.ledger.calls == 6 and teacher.ledger.completion_tokens > 0

    env = SkillWorld(eval_per_skill=2, pool_per_skill=3)
    found = discover(teacher, env.train_pool(), env.eval_set(), sample_size=8, max_skills=5)
    leaves = found.tree.leaves()
    assert 1 <= len(leaves) <= 5
    labelled = [s for skills in found.labels.values() for s in skills]
    assert labelled and set(labelled) <= set(leaves)  # labels are constrained to the discovered list
    # a second discovery with the same teacher answers from the cache alone
    calls = teacher.ledger.calls
    again = discover(teacher, env.train_pool(), env.eval_set(), sample_size=8, max_skills=5)
    assert again.tree == found.tree and teacher.ledger.calls == calls


TEACHER_RUN = ["--iterations", "2", "--budget", "12", "--epochs", "1", "--diagnosis", "llm", "--quiet"]


def teacher_config(tmp_path, max_tokens: int = 1024) -> str:
    path = tmp_path / "teacher.yaml"
    path.write_text(  # random weights write nothing usable: accept any yield, train on replayed seed data
        "max_errors: 6\nmin_yield: 0\nreplay: 4\n"
        f"teacher: {{backend: openai, model: x, max_tokens: {max_tokens}, concurrency: 8}}\n"
    )
    return str(path)


def test_loop_with_a_vllm_serve_teacher_end_to_end(vllm_server, tiny_teacher, tmp_path):
    out = teachloop(
        "run", "--out", str(tmp_path), "--name", "served", "--config", teacher_config(tmp_path),
        "--teacher", f"openai:{tiny_teacher}", "--teacher-base-url", vllm_server, *TEACHER_RUN,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "served"
    records = load_metrics(run)
    assert [r.iteration for r in records] == [0, 1, 2]
    ledger = json.loads((run / "teacher_ledger.json").read_text())
    assert ledger["calls"] > 0 and ledger["prompt_tokens"] > 0
    # nonsense items fail skillworld's checker and are kept with the reason
    rejected = [json.loads(x) for x in (run / "iter_0" / "data" / "rejected.jsonl").read_text().splitlines()]
    assert rejected and all(r["reason"] for r in rejected)
    data_yield = RunStore(run).phase_record(0, "data").info["yield"]
    assert data_yield["asked"] == 12 and data_yield["accepted"] + sum(data_yield["rejected"].values()) >= 12
    assert json.loads((run / "iter_0/feedback/feedback.json").read_text())["profile"]["judge"].startswith("llm:")


def test_killed_after_generation_started_resumes_without_repaying_calls(vllm_server, tiny_teacher, tmp_path):
    # the proxy answers 4 generation requests, then holds the rest: the run is pinned
    # mid-generation with replies already paid for, however fast the machine is
    with GatedProxy(vllm_server, gated_schema="NewExample", open_count=4) as proxy:
        args = [
            "teachloop", "run", "--out", str(tmp_path), "--name", "killed", "--config", teacher_config(tmp_path),
            "--teacher", f"openai:{tiny_teacher}", "--teacher-base-url", proxy.base_url, *TEACHER_RUN,
        ]  # fmt: skip
        log = tmp_path / "killed.log"
        with log.open("w") as sink:
            proc = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        run = tmp_path / "killed"
        deadline = time.time() + 600
        try:
            while not (proxy.held and proxy.answered == proxy.open_count):
                assert proc.poll() is None, f"run ended before its generation phase was held: {log.read_text()[-2000:]}"
                assert time.time() < deadline
                time.sleep(0.05)
            # with the rest held, the cache stops growing once the answered replies are written
            cached, stable_since = -1, time.time()
            while time.time() - stable_since < 2:
                now = len(list((run / "cache").rglob("*.json")))
                cached, stable_since = now, (stable_since if now == cached else time.time())
                time.sleep(0.1)
            assert list((run / "iter_0").glob(".data.*.tmp"))  # killed inside the generation phase
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=60)
        paid_before = len(list((run / "cache").rglob("*.json")))
        proxy.release()

        out = teachloop("resume", str(run), "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    ledger = json.loads((run / "teacher_ledger.json").read_text())
    replies = len(list((run / "cache").rglob("*.json")))
    assert ledger["cache_hits"] >= proxy.open_count  # the generation replies paid before the kill
    assert ledger["calls"] <= replies  # no reply was paid for twice
    assert replies >= paid_before and RunStore(run).is_finished()


def write_gsm8k(path):
    rows = [
        {"question": f"Tom has {a} apples and buys {b} more. How many apples does he have?",
         "answer": f"He has {a} + {b} = {a + b} apples.\n#### {a + b}"}
        for a, b in [(3, 4), (10, 5), (7, 8), (2, 9), (6, 6), (12, 1), (4, 4), (5, 9)]
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("env", ["math", "code"])
def test_real_task_environments_run_end_to_end_with_tiny_student_and_served_teacher(
    env, vllm_server, tiny_teacher, tmp_path
):
    options = (
        ["--env-option", f"train_file={write_gsm8k(tmp_path / 'gsm8k.jsonl')}", "--env-option", "eval_fraction=0.5"]
        if env == "math"
        else ["--env-option", "limit=6"]
    )
    out = teachloop(
        "run", "--out", str(tmp_path), "--name", env, "--env", env, *options, "--student-model", tiny_teacher,
        "--config", teacher_config(tmp_path, max_tokens=192), "--teacher", f"openai:{tiny_teacher}",
        "--teacher-base-url", vllm_server, "--iterations", "1", "--budget", "4", "--epochs", "1", "--quiet",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / env
    records = load_metrics(run)
    assert [r.iteration for r in records] == [0, 1] and records[-1].teacher["calls"] > 0
    train = json.loads((run / "iter_0/train/done.json").read_text())["info"]
    assert train["method"] == "lora"  # any model but the embedded one: LoRA by default
    attempts = [json.loads(x) for x in (run / "iter_0/eval/attempts.jsonl").read_text().splitlines()]
    assert attempts and not any(a["correct"] for a in attempts)  # random weights solve nothing
    room = json.loads((run / "iter_0/eval/done.json").read_text())["info"]["max_new_tokens"]
    assert room == {"math": 256, "code": 384}[env]  # the environment's answer length, not skillworld's 16
    rejected = [json.loads(x) for x in (run / "iter_0/data/rejected.jsonl").read_text().splitlines()]
    assert all(r["reason"] for r in rejected)


def _process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


# SIGTERM once the server answers; SIGHUP (a closed terminal) while it is still starting, the
# moment its process exists: the server's group is stopped either way
@pytest.mark.parametrize("stop, when", [(signal.SIGTERM, "serving"), (signal.SIGHUP, "starting")])
def test_a_stop_signal_to_teachloop_serve_stops_the_vllm_server_too(stop, when, tiny_teacher, tmp_path):
    """vLLM runs in a process group of its own, so a stop signal that only reached teachloop
    used to leave the server running (and holding its port and memory) after teachloop died."""
    require_vllm()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve = subprocess.Popen(
        ["teachloop", "serve", tiny_teacher, "--port", str(port), "--log", str(tmp_path / "serve.log")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        for line in serve.stdout:  # blocks until the server starts or is up (or teachloop exits)
            if when in line:
                break
        else:
            pytest.fail(f"teachloop serve never said {when!r}: {(tmp_path / 'serve.log').read_text()[-2000:]}")
        deadline = time.time() + 60
        while not (children := _children(serve.pid)) and serve.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert children, "teachloop serve started no server process"
        server_group = os.getpgid(children[0])
        assert server_group != os.getpgid(serve.pid)  # its own group: the signal reaches only teachloop
        serve.send_signal(stop)
        assert serve.wait(timeout=60) == 0
        rest = serve.stdout.read()
        assert "stopped" in rest and (when == "serving" or "serving" not in rest), rest
        deadline = time.time() + 30
        while _process_group_alive(server_group) and time.time() < deadline:
            time.sleep(0.5)
        assert not _process_group_alive(server_group), "the vllm server outlived teachloop serve"
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, "the port still answers"
    finally:
        if serve.poll() is None:
            serve.kill()


def test_a_stop_signal_while_the_server_process_is_made_is_raised_once_it_is_known():
    """Inside `_signals_after` (around Popen) a stop signal runs no handler; it is raised
    when the block ends, so the caller knows the pid of the server it must stop."""
    from teachloop.inference.vllm_server import _signals_after

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    made = []
    try:
        with pytest.raises(KeyboardInterrupt), _signals_after():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)  # a handler would have raised by now
            made.append("pid")
        assert made == ["pid"]
        assert signal.getsignal(signal.SIGTERM) is stop  # the handler is back
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_small_host_gives_its_cpu_engines_every_cpu_and_a_users_setting_wins(monkeypatch):
    from teachloop.inference import vllm_options

    monkeypatch.delenv(vllm_options.RESERVED_CPU_ENV, raising=False)
    monkeypatch.setattr(vllm_options, "on_gpu", lambda: False)
    monkeypatch.setattr(vllm_options, "usable_cpus", lambda: 2)
    assert vllm_options.cpu_engine_env() == {vllm_options.RESERVED_CPU_ENV: "0"}
    with vllm_options.cpu_engine_environment():  # while an in-process engine starts
        assert os.environ[vllm_options.RESERVED_CPU_ENV] == "0"
    assert vllm_options.RESERVED_CPU_ENV not in os.environ  # and as it was afterwards
    monkeypatch.setattr(vllm_options, "usable_cpus", lambda: 16)
    assert vllm_options.cpu_engine_env() == {}  # a big host keeps vLLM's own choice
    monkeypatch.setattr(vllm_options, "usable_cpus", lambda: 2)
    monkeypatch.setenv(vllm_options.RESERVED_CPU_ENV, "1")
    assert vllm_options.cpu_engine_env() == {}
    with vllm_options.cpu_engine_environment():
        assert os.environ[vllm_options.RESERVED_CPU_ENV] == "1"
