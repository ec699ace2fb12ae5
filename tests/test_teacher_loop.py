"""The loop with an LLM teacher behind a real (fault-injecting) HTTP endpoint."""

import json

import pytest
from conftest import teachloop
from fault_server import FaultServer

from teachloop.runs.loop.store import RunStore
from teachloop.runs.reporting.report import load_metrics

pytestmark = pytest.mark.slow


def test_loop_survives_a_fault_storm_and_records_every_skip(tmp_path):
    script = ["429", "500", "slow", "badbody", "badcontent"] * 6
    with FaultServer(script, slow_seconds=3) as server:
        out = teachloop(
            "run", "--out", str(tmp_path), "--name", "faulty", "--iterations", "2", "--budget", "16",
            "--epochs", "1", "--teacher", "openai:fake", "--teacher-base-url", server.base_url,
            "--diagnosis", "llm", "--verify", "consistency", "--teacher-concurrency", "4", "--quiet",
            "--config", str(write_config(tmp_path)),
        )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "faulty"
    ledger = json.loads((run / "teacher_ledger.json").read_text())
    assert ledger["retries"] >= 24  # every transport fault was retried
    assert ledger["invalid_replies"] >= 6 and ledger["calls"] > 0
    records = load_metrics(run)
    assert len(records) == 3 and records[-1].teacher["calls"] == ledger["calls"]
    # the fake teacher writes the same item every time: one is kept, the rest are duplicates
    rejected = [json.loads(line) for line in (run / "iter_0" / "data" / "rejected.jsonl").read_text().splitlines()]
    assert any(r["reason"].startswith("duplicate") for r in rejected)
    feedback = json.loads((run / "iter_0" / "feedback" / "feedback.json").read_text())
    assert feedback["profile"]["judge"] == "llm:openai:fake"
    assert RunStore(run).phase_record(0, "data").info["teacher"]["calls"] > 0


def write_config(tmp_path):
    path = tmp_path / "teacher.yaml"
    # the fake teacher repeats one item: a yield of 1 per iteration is accepted here
    path.write_text("min_yield: 0\nteacher:\n  backend: openai\n  model: fake\n  timeout: 1.0\n  max_retries: 8\n")
    return path
