"""The raydata teacher backend: teacher calls through a Ray Data LLM HTTP processor
(`ray.data.llm`), checked against a fault-injecting server and the real SmolLM2 behind
`vllm serve`, side by side with the built-in openai backend."""

import json

import pytest
from conftest import FULL_SUITE, teachloop
from fault_server import FaultServer
from pydantic import BaseModel, Field
from test_real_model import assert_stopped_on_low_yield, teacher_run

from teachloop.agents.teacher import TeacherConfig, TeacherLLM

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def ray_data_llm():
    try:
        import ray
        import ray.data.llm
    except ImportError:
        if FULL_SUITE:
            raise
        pytest.skip("Ray Data is not installed: pip install -e '.[ray]'")
    yield
    ray.shutdown()


class Pair(BaseModel):
    question: str = Field(max_length=40)
    answer: str = Field(max_length=20)


def ask(teacher: TeacherLLM, n: int) -> list:
    return teacher.structured(
        [[{"role": "user", "content": f"Write question {i} and its answer."}] for i in range(n)], Pair
    )


def test_endpoint_errors_become_the_outcomes_teacherllm_records(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    with FaultServer(["reject", "500", "badbody", "429", "429"]) as server:
        cfg = TeacherConfig(backend="raydata", model="m", base_url=server.base_url, concurrency=2, validation_retries=0)
        teacher = TeacherLLM(cfg, run_dir=tmp_path)
        replies = ask(teacher, 6)
    assert replies[0] is None and all(isinstance(r, Pair) for r in replies[1:])  # only the refused one is lost
    ledger = teacher.ledger
    assert (ledger.calls, ledger.failures, ledger.unreached) == (5, 1, 0)
    assert ledger.retries == 4  # the 500 and the unreadable body were asked again by us, the 429s by Ray
    failure = json.loads((tmp_path / "teacher_failures.jsonl").read_text())
    assert failure["error"].startswith("rejected: 400")  # recorded, never re-asked
    assert server.served == {"reject": 1, "500": 1, "badbody": 1, "429": 2, "ok": 5}
    assert {r["authorization"] for r in server.requests} == {"Bearer sk-test-key"}
    assert "sk-test-key" not in (tmp_path / "teacher_ledger.json").read_text()
    first = server.requests[-1]
    assert first["response_format"]["json_schema"]["strict"] is True and first["seed"] >= 0


def test_an_unreachable_endpoint_opens_the_circuit_breaker(tmp_path):
    from teachloop.errors import RunStopped

    with FaultServer() as server:
        base_url = server.base_url  # closed on exit: nothing listens there any more
    cfg = TeacherConfig(backend="raydata", model="m", base_url=base_url, max_retries=0, max_consecutive_failures=3)
    with pytest.raises(
        RunStopped,
        match=r"failed 3 calls in a row \(last: TransientError: no reply .*ClientConnectorError.*"
        r"max_consecutive_failures is 3 \(1 calls in flight then failed too\)",
    ):
        ask(TeacherLLM(cfg, run_dir=tmp_path), 4)


def test_raydata_and_openai_backends_generate_validate_and_cache_alike(smollm2, smollm2_server, tmp_path):
    for backend in ("openai", "raydata"):
        cfg = TeacherConfig(
            backend=backend, model=smollm2, base_url=smollm2_server, max_tokens=64, temperature=0.8, concurrency=2
        )
        teacher = TeacherLLM(cfg, run_dir=tmp_path / backend)
        replies = ask(teacher, 4)
        assert all(isinstance(r, Pair) for r in replies), (backend, teacher.ledger)
        assert teacher.ledger.calls >= 4 and teacher.ledger.failures == 0 and teacher.ledger.completion_tokens > 0
        again = TeacherLLM(cfg, run_dir=tmp_path / backend)  # a resumed run: same cache, same ledger file
        calls = again.ledger.calls
        assert ask(again, 4) == replies
        assert again.ledger.calls == calls and again.ledger.cache_hits >= 4, backend


def test_a_run_with_the_raydata_teacher_resumes_without_repaying_calls(smollm2, smollm2_server, tmp_path):
    out = teacher_run(tmp_path, "raydata", "--teacher", f"raydata:{smollm2}", "--teacher-base-url", smollm2_server)
    run = tmp_path / "raydata"
    ledger = assert_stopped_on_low_yield(out, run)  # as test_real_model's run through the openai backend
    resumed = teachloop("resume", str(run), "--min-yield", "0", "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = json.loads((run / "teacher_ledger.json").read_text())
    assert after["calls"] == ledger["calls"] and after["cache_hits"] >= 8
