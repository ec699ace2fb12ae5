"""The scorers against a table of (response, reference, verdict) cases, tests/data/scorer_cases.jsonl.

Every case goes through a real environment's `score()`: the `math` environment (gsm8k and
math styles) and the `jsonl` environment (`numeric`, `math`, `exact` scorers), each built
from a small data file whose eval rows are the cases' references. A case's `options` are
the environment's options; `adversarial` marks responses built to fool a lenient scorer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from teachloop.environments import get_environment

CASES_FILE = Path(__file__).parent / "data" / "scorer_cases.jsonl"
MIN_CASES = 80
MIN_ADVERSARIAL = 20


class ScorerCase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scorer: Literal["math", "jsonl"]  # the environment whose score() judges the response
    options: dict[str, Any]  # that environment's options (style, scorer, tolerance, ...)
    response: str
    reference: str
    verdict: bool
    adversarial: bool = False
    why: str = Field(min_length=1)

    def group(self) -> str:
        return json.dumps({"scorer": self.scorer, "options": self.options}, sort_keys=True)


CASES = [ScorerCase.model_validate_json(line) for line in CASES_FILE.read_text().splitlines() if line.strip()]
_CASE_TAG = re.compile(r"case (\d+)\?")


def _write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _environment(case: ScorerCase, cases: list[tuple[int, ScorerCase]], folder: Path) -> Any:
    """The case's environment, with one eval example per case (question `case <index>?`)."""
    question, answer = ("question", "answer") if case.scorer == "math" else ("prompt", "answer")
    filler = [{question: f"filler {i}?", answer: "1"} for i in range(2)]
    rows = [{question: f"case {index}?", answer: c.reference} for index, c in cases]
    train = _write_jsonl(folder / "train.jsonl", filler)
    evals = _write_jsonl(folder / "eval.jsonl", rows)
    return get_environment(case.scorer, train_file=str(train), eval_file=str(evals), **case.options)


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[int, bool]:
    """Each case's index -> what its environment's score() said."""
    groups: dict[str, list[tuple[int, ScorerCase]]] = {}
    for index, case in enumerate(CASES):
        groups.setdefault(case.group(), []).append((index, case))
    out: dict[int, bool] = {}
    for number, members in enumerate(groups.values()):
        env = _environment(members[0][1], members, tmp_path_factory.mktemp(f"group{number}"))
        examples = {int(m.group(1)): ex for ex in env.eval_set() if (m := _CASE_TAG.search(ex.prompt))}
        for index, case in members:
            assert index in examples, f"case {index}: reference {case.reference!r} was not loaded as an example"
            attempt = env.score(examples[index], case.response)
            assert attempt.score == float(attempt.correct)
            out[index] = attempt.correct
    return out


@pytest.mark.parametrize(
    "index", range(len(CASES)), ids=[f"{i:03d}-{c.scorer}-{c.why[:40]}" for i, c in enumerate(CASES)]
)
def test_scorer_verdict(index: int, verdicts: dict[int, bool]) -> None:
    case = CASES[index]
    assert verdicts[index] == case.verdict, (
        f"{case.scorer} {case.options}: response {case.response[:80]!r} vs reference {case.reference!r} "
        f"should be {'accepted' if case.verdict else 'rejected'} ({case.why})"
    )


def test_no_false_accepts(verdicts: dict[int, bool]) -> None:
    false_accepts = [
        (i, CASES[i].response[:60], CASES[i].reference) for i, v in verdicts.items() if v and not CASES[i].verdict
    ]
    assert false_accepts == []


def test_the_table_is_big_adversarial_and_covers_every_scorer() -> None:
    assert len(CASES) >= MIN_CASES
    adversarial = [c for c in CASES if c.adversarial]
    assert len(adversarial) >= MIN_ADVERSARIAL
    assert not any(c.verdict for c in adversarial)  # adversarial rows are all garbage to reject
    kinds = {(c.scorer, c.options.get("style"), c.options.get("scorer")) for c in CASES}
    assert {("math", "gsm8k", None), ("math", "math", None)} <= kinds
    assert {"numeric", "math", "exact"} <= {c.options.get("scorer") for c in CASES if c.scorer == "jsonl"}
    assert any(c.verdict for c in CASES) and any(not c.verdict for c in CASES)


def test_the_docs_state_the_table_size() -> None:
    readme = " ".join((Path(__file__).parents[1] / "docs" / "real-models.md").read_text().split())  # wrapping aside
    adversarial = sum(c.adversarial for c in CASES)
    assert f"{len(CASES)} (response, reference, verdict) cases, {adversarial} of them adversarial" in readme
