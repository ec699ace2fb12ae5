"""TeacherLLM against a real HTTP server on loopback that injects faults."""

import json
from pathlib import Path

import pytest
from fault_server import FaultServer
from pydantic import BaseModel, Field

from teachloop.agents.teacher import TeacherConfig, TeacherLLM, parse_reply
from teachloop.errors import ConfigError


class Answer(BaseModel):
    answer: str = Field(min_length=1)
    confidence: int = Field(ge=0, le=10)


def teacher(server: FaultServer, tmp_path, **overrides) -> TeacherLLM:
    fields = {"timeout": 0.5, "concurrency": 4} | overrides
    cfg = TeacherConfig(backend="openai", model="fake", base_url=server.base_url, api_key="k", **fields)
    return TeacherLLM(cfg, run_dir=tmp_path)


def conversations(n: int) -> list[list[dict]]:
    return [[{"role": "user", "content": f"question {i}"}] for i in range(n)]


def test_a_fault_storm_is_survived_counted_and_cached(tmp_path):
    script = ["429", "429", "500", "slow", "badbody", "429", "500", "429"]
    with FaultServer(script) as server:
        client = teacher(server, tmp_path)
        replies = client.structured(conversations(6), Answer, purpose="test")
        assert all(isinstance(r, Answer) for r in replies)
        ledger = client.ledger
        assert ledger.calls == 6 and ledger.failures == 0
        assert ledger.retries == len(script)  # every fault was retried once, then served
        assert ledger.prompt_tokens == 60 and ledger.completion_tokens == 30
        assert server.served["ok"] == 6

        # a rerun pays nothing: every reply comes from the cache, the server sees no request
        before = server.total()
        again = TeacherLLM(client.cfg, run_dir=tmp_path)
        assert again.structured(conversations(6), Answer, purpose="test") == replies
        assert server.total() == before
        assert again.ledger.cache_hits == 6 and again.ledger.calls == 6  # ledger persists per run
    saved = json.loads((tmp_path / "teacher_ledger.json").read_text())
    assert saved["cache_hits"] == 6 and saved["retries"] == len(script)


def failure_kinds(run: Path) -> list[str]:
    return [json.loads(line)["kind"] for line in (run / "teacher_failures.jsonl").read_text().splitlines()]


def test_invalid_replies_are_retried_then_recorded_and_skipped(tmp_path):
    # asked in order (concurrency 1): conversation 0 is bad on all three asks, 1 on the first two
    with FaultServer(["badcontent"] * 5) as server:
        client = teacher(server, tmp_path, concurrency=1, validation_retries=2)
        replies = client.structured(conversations(2), Answer, purpose="judge")
    assert replies[0] is None and isinstance(replies[1], Answer)
    assert client.ledger.invalid_replies == 5 and client.ledger.failures == 1
    rows = [json.loads(line) for line in (tmp_path / "teacher_failures.jsonl").read_text().splitlines()]
    assert len(rows) == 1
    assert rows[0]["purpose"] == "judge" and rows[0]["raw"] == "not json at all"
    assert rows[0]["messages"] == conversations(2)[0] and "does not fit Answer" in rows[0]["error"]
    assert rows[0]["kind"] == "invalid"


def test_retries_run_out_and_the_item_is_skipped(tmp_path):
    with FaultServer(["500"] * 10) as server:
        client = teacher(server, tmp_path, max_retries=1, validation_retries=0, concurrency=1)
        replies = client.structured(conversations(1), Answer)
    assert replies == [None]
    assert client.ledger.retries == 1 and client.ledger.failures == 1
    assert failure_kinds(tmp_path) == ["transport"] and client.ledger.unreached == 1


def test_cost_is_counted_when_prices_are_configured(tmp_path):
    with FaultServer() as server:
        client = teacher(server, tmp_path, price_prompt_per_mtok=1.0, price_completion_per_mtok=2.0)
        client.structured(conversations(2), Answer)
    assert client.ledger.cost == pytest.approx((20 * 1.0 + 10 * 2.0) / 1e6)


def test_teacher_spec_and_reply_parsing():
    cfg = TeacherConfig.from_spec("openai:gpt-x", base_url="http://h/v1", concurrency=None)
    assert (cfg.backend, cfg.model, cfg.options.base_url, cfg.options.concurrency) == (
        "openai",
        "gpt-x",
        "http://h/v1",
        8,
    )
    assert TeacherConfig.from_spec("vllm:/models/tiny").backend == "vllm"
    for bad in ("gpt-x", ":x", "openai:"):
        with pytest.raises(ConfigError, match="--teacher must look like"):
            TeacherConfig.from_spec(bad)
    with pytest.raises(
        ConfigError, match="unknown teacher backend 'claude'; available: openai, raydata, raydata-vllm, vllm"
    ):
        TeacherConfig.from_spec("claude:x")
    with pytest.raises(
        ConfigError, match="teacher backend 'vllm': unknown option 'base_url'; its options: vllm_options"
    ):
        TeacherConfig.from_spec("vllm:/models/tiny", base_url="http://h/v1")
    assert parse_reply('```json\n{"answer": "a", "confidence": 3}\n```', Answer).answer == "a"


def test_token_budget_per_iteration_stops_paid_calls_until_the_next_window(tmp_path):
    with FaultServer() as server:
        client = teacher(server, tmp_path, max_tokens_per_iteration=30, validation_retries=0)
        client.open_budget_window()
        assert all(client.structured(conversations(2), Answer))  # 2 x 15 tokens: budget reached
        before = server.total()
        assert client.structured([[{"role": "user", "content": "one more"}]], Answer) == [None]
        assert server.total() == before  # nothing was sent
        assert failure_kinds(tmp_path) == ["budget"]
        assert client.structured(conversations(2), Answer) != [None, None]  # cached replies stay free
        client.open_budget_window()
        assert client.structured([[{"role": "user", "content": "one more"}]], Answer)[0] is not None


def test_a_call_budget_sends_exactly_what_it_allows_and_a_cost_budget_stops_at_its_price(tmp_path):
    with FaultServer() as server:
        client = teacher(server, tmp_path / "calls", max_calls_per_iteration=3, validation_retries=0)
        client.open_budget_window()
        replies = client.structured(conversations(5), Answer)
        assert sum(r is not None for r in replies) == 3 and server.total() == 3  # not one call more
        client.open_budget_window()
        assert all(client.structured(conversations(5), Answer))  # 3 cached (free) + the 2 left, paid now
        assert server.total() == 5
    with FaultServer() as server:  # 15 tokens a call at 1000 per million: 0.015 a call
        priced = {"price_prompt_per_mtok": 1000.0, "price_completion_per_mtok": 1000.0}
        client = teacher(server, tmp_path / "cost", max_cost_per_iteration=0.02, validation_retries=0, **priced)
        client.open_budget_window()
        assert all(client.structured(conversations(1), Answer))
        assert all(client.structured(conversations(2)[1:], Answer))  # 0.015 spent, under 0.02: one more
        assert client.structured([[{"role": "user", "content": "one more"}]], Answer) == [None]  # 0.03 >= 0.02
        assert server.total() == 2 and client.ledger.cost == pytest.approx(0.03)
    with pytest.raises(ValueError, match="max_cost_per_iteration needs price"):
        TeacherConfig(backend="openai", model="m", max_cost_per_iteration=1.0)


def test_a_refused_request_is_recorded_and_skipped_not_retried(tmp_path):
    with FaultServer(["reject"]) as server:
        client = teacher(server, tmp_path, concurrency=1)
        replies = client.structured(conversations(2), Answer, purpose="generate")
        assert replies[0] is None and isinstance(replies[1], Answer)
        assert server.served["reject"] == 1 and server.total() == 2  # asked once, never again
    assert client.ledger.failures == 1 and client.ledger.retries == 0
    assert "rejected: 400" in (tmp_path / "teacher_failures.jsonl").read_text()
    assert failure_kinds(tmp_path) == ["rejected"] and client.ledger.unreached == 0


def test_identical_requests_in_one_batch_are_sent_once_and_share_the_reply(tmp_path):
    """Two slots asking the same thing (the same re-answer of a duplicate question) get the one
    reply the cache keeps, so a resumed run reads back what each slot had."""
    same = [[{"role": "user", "content": "the same question"}]]
    with FaultServer() as server:
        client = teacher(server, tmp_path)
        replies = client.structured(same * 3 + conversations(2), Answer)
        assert server.total() == 3 and replies[0] == replies[1] == replies[2]
        assert client.ledger.calls == 3 and client.ledger.cache_hits == 2
        again = teacher(server, tmp_path).structured(same * 3 + conversations(2), Answer)
        assert again == replies and server.total() == 3  # all from the cache
