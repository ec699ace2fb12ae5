"""The raydata-vllm teacher backend: the real SmolLM2 in vLLM engines run by Ray Data LLM
(`ray.data.llm.vLLMEngineProcessorConfig`), on this machine's CPUs when it has no GPU."""

import json

import pytest
from conftest import require_ray_data_llm, require_vllm
from pydantic import BaseModel, Field

from teachloop.agents.teacher import TeacherConfig, TeacherLLM

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def ray_data_llm():
    require_vllm()
    ray = require_ray_data_llm()
    yield
    ray.shutdown()


class Pair(BaseModel):
    question: str = Field(max_length=40)
    answer: str = Field(max_length=20)


def ask(teacher: TeacherLLM, prompts: list[str]) -> list:
    return teacher.structured([[{"role": "user", "content": p}] for p in prompts], Pair)


def test_engines_in_ray_data_generate_validate_cache_and_reject_alone(smollm2, tmp_path):
    prompts = [f"Write question {i} and its answer." for i in range(4)] + ["word " * 3000]  # the last is too long
    cfg = TeacherConfig(
        backend="raydata-vllm", model=smollm2, max_tokens=64, temperature=0.8, concurrency=2, validation_retries=0
    )
    teacher = TeacherLLM(cfg, run_dir=tmp_path)
    replies = ask(teacher, prompts)
    assert all(isinstance(r, Pair) for r in replies[:4]) and replies[4] is None, teacher.ledger
    ledger = teacher.ledger
    assert (ledger.calls, ledger.failures, ledger.unreached) == (4, 1, 0)
    assert ledger.prompt_tokens > 0 and ledger.completion_tokens > 0
    failure = json.loads((tmp_path / "teacher_failures.jsonl").read_text())
    assert failure["error"].startswith("rejected: ") and "maximum context length" in failure["error"]

    again = TeacherLLM(cfg, run_dir=tmp_path)  # a resumed run: same cache, same ledger file
    assert ask(again, prompts[:4]) == replies[:4]  # no engine starts: every reply is cached
    assert again.ledger.calls == 4 and again.ledger.cache_hits >= 4 and again._backend is None
