"""What each iteration of a run did with its data, read from the phase artifacts: the plan
(per skill, with the policy's rationale), the examples kept with their lineage, the rejected
ones by reason, the shortfall, the train loss, the eval replies that hit the token limit and
the teacher's failures. The one reader behind report.md's data section and `teachloop show`.

A data phase that stopped the run (too little usable data) is read too: its folder has the
files but no done.json, and `stopped` says why.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teachloop.io import read_text
from teachloop.runs.loop.artifacts import DataFiles, EvalFiles, PlanFiles
from teachloop.runs.loop.store import DONE, FAILED, PHASES, RUN_PHASES, RunStore
from teachloop.types import DataPlan, DataYield, Example, Rejected

TEACHER_FAILURES = "teacher_failures.jsonl"  # the main teacher's (TeacherRecords, role "teacher")


def reason_kind(reason: str) -> str:
    """'duplicate: prompt already generated' -> 'duplicate' (how DataYield counts reasons)."""
    return reason.split(":", 1)[0].strip() or "(no reason)"


def example_skill(example: Example) -> str:
    """The skill an example was made for: its lineage's, else its first label, else '*'."""
    if example.lineage is not None and example.lineage.skill:
        return example.lineage.skill
    return example.skills[0] if example.skills else "*"


@dataclass(frozen=True)
class SkillLine:
    """One skill of an iteration's plan and what came of it."""

    skill: str
    asked: int
    kept: int
    rejected: int
    shortfall: int


@dataclass
class IterationData:
    iteration: int
    evaluated: int = 0  # eval replies scored at this iteration
    hit_limit: int | None = None  # of them, replies that ran to the max-new-tokens limit
    max_new_tokens: int | None = None
    plan: DataPlan | None = None
    examples: list[Example] | None = None  # None: no data phase (yet)
    rejected: list[Rejected] = field(default_factory=list)
    shortfall: dict[str, int] = field(default_factory=dict)
    data_yield: DataYield | None = None
    stopped: str | None = None  # why the data phase stopped the run (its failed.json)
    candidates: int | None = None  # a selecting policy's candidates
    train: dict[str, Any] | None = None  # the train phase's record (examples, loss, method, ...)
    teacher_failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def train_loss(self) -> dict[str, float]:
        return dict((self.train or {}).get("loss") or {})

    def rejections(self) -> dict[str, list[Rejected]]:
        """Rejected examples grouped by reason, the most frequent reason first."""
        groups: dict[str, list[Rejected]] = {}
        for item in self.rejected:
            groups.setdefault(reason_kind(item.reason), []).append(item)
        return dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))

    def examples_by_skill(self) -> dict[str, list[Example]]:
        groups: dict[str, list[Example]] = {}
        for example in self.examples or []:
            groups.setdefault(example_skill(example), []).append(example)
        return groups

    def facts(self) -> list[str]:
        """The iteration's data in plain sentences, report.md's and `teachloop show`'s list:
        limit hits of its evaluation, the plan, yield, rejections by reason, shortfall, the
        stop, train loss, teacher failures. The rationale and the per-skill lines are apart."""
        facts = []
        if self.evaluated:
            limit = f"the {self.max_new_tokens}-token limit" if self.max_new_tokens else "the token limit"
            facts.append(f"eval: {self.hit_limit or 0} of {self.evaluated} replies hit {limit}")
        if self.plan is not None:
            pool = f"; {self.plan.pool_samples} pool draws" if self.plan.pool_samples else ""
            facts.append(f"plan ({self.plan.policy}): {self.plan.total_requested} new examples asked{pool}")
        if self.examples is not None:
            rejected = {reason: len(items) for reason, items in self.rejections().items()}
            facts.append(f"yield: {self._yield()}")
            facts.append(f"rejected ({len(self.rejected)}) by reason: {_counts(rejected)}")
            facts.append(f"shortfall (slots nothing was made for): {_counts(self.shortfall)}")
            if self.candidates is not None:
                facts.append(f"candidates the policy chose from: {self.candidates}")
            if self.stopped:
                facts.append(f"stopped the run: {' '.join(self.stopped.split())}")
        if self.train is not None:
            loss = ", ".join(f"{name} {value:.4f}" for name, value in self.train_loss.items()) or "not recorded"
            speed = "".join(
                f"; {name} {t['tokens'] / t['seconds']:.0f} tokens/s ({t['tokens']} tokens in {t['seconds']:.0f} s, "
                f"micro batch {t['micro_batch']}), peak {t['peak_gb']:.1f} GB"
                for name, t in (self.train.get("throughput") or {}).items()
                if t.get("seconds")
            )
            facts.append(f"train: on {self.train.get('examples', 0)} examples, loss {loss}{speed}")
        if self.teacher_failures:
            purposes = dict(Counter(str(f.get("purpose", "?")) for f in self.teacher_failures).most_common())
            facts.append(f"teacher failures: {len(self.teacher_failures)} ({_counts(purposes)})")
        return facts

    def _yield(self) -> str:
        """'kept 30 of 40 asked (75%)'; what the data phase kept where nothing was asked."""
        found = self.data_yield
        if found is None or not found.asked:
            return f"kept {len(self.examples or [])} (no new examples asked)"
        return f"kept {found.accepted} of {found.asked} asked ({found.accepted / found.asked:.0%})"

    def skill_lines(self) -> list[SkillLine]:
        """Per skill: asked by the plan, kept, rejected and never made; skills the plan did not
        ask for (pool draws, a selecting policy's picks) follow with asked 0."""
        asked = self.plan.allocation() if self.plan is not None else {}
        kept = Counter(example_skill(ex) for ex in self.examples or [])
        rejected = Counter(example_skill(r.example) for r in self.rejected)
        skills = list(asked) + sorted((set(kept) | set(rejected) | set(self.shortfall)) - set(asked))
        return [
            SkillLine(s, asked.get(s, 0), kept.get(s, 0), rejected.get(s, 0), self.shortfall.get(s, 0)) for s in skills
        ]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "none"


def _info(folder: Path) -> dict[str, Any] | None:
    """A phase's recorded info: done.json's, or failed.json's for a phase that stopped the run."""
    for name in (DONE, FAILED):
        if (folder / name).is_file():
            return dict(json.loads(read_text(folder / name)).get("info") or {})
    return None


def _lines(path: Path) -> int:
    return sum(1 for line in read_text(path).splitlines() if line.strip()) if path.is_file() else 0


def _read_iteration(store: RunStore, i: int) -> IterationData:
    data = IterationData(iteration=i)
    folder = store.phase_dir(i, "eval")
    if store.is_done(i, "eval"):
        info = _info(folder) or {}
        data.evaluated = _lines(folder / EvalFiles.ATTEMPTS)
        if "hit_limit" in info or (folder / EvalFiles.REPORT).is_file():
            data.hit_limit = info.get("hit_limit", EvalFiles.read_summary(folder).hit_limit)
        data.max_new_tokens = info.get("max_new_tokens")
    if store.is_done(i, "plan") and (store.phase_dir(i, "plan") / PlanFiles.PLAN).is_file():
        data.plan = PlanFiles.read(store.phase_dir(i, "plan"))
    folder = store.phase_dir(i, "data")
    info = _info(folder)
    if info is not None and (folder / DataFiles.EXAMPLES).is_file():
        data.examples = DataFiles.read_examples(folder)
        data.rejected = DataFiles.read_rejected(folder) if (folder / DataFiles.REJECTED).is_file() else []
        data.shortfall = dict(info.get("shortfall") or {})
        if "yield" in info:
            data.data_yield = DataYield.model_validate(info["yield"])
        if (folder / DataFiles.CANDIDATES).is_file():
            data.candidates = _lines(folder / DataFiles.CANDIDATES)
        if not store.is_done(i, "data"):
            data.stopped = str(json.loads(read_text(folder / FAILED)).get("reason", "stopped"))
    if store.is_done(i, "train"):
        data.train = _info(store.phase_dir(i, "train"))
    return data


def teacher_failures(store: RunStore) -> dict[int | None, list[dict[str, Any]]]:
    """The main teacher's failure records (prompt, raw reply, error) per iteration.

    The records carry no iteration: each phase's done.json counts the failures it had, so the
    records are handed out in phase order. Where the counts do not add up (a phase redone
    after a kill logs its failures again) every record is listed under None, as are those of
    the run-level phases (discovery)."""
    path = store.root / TEACHER_FAILURES
    if not path.is_file():
        return {}
    records = [json.loads(line) for line in read_text(path).splitlines() if line.strip()]
    order: list[tuple[int | None, str]] = [(None, p) for p in RUN_PHASES]
    i = 0
    while store.iter_dir(i).is_dir():
        order += [(i, p) for p in PHASES]
        i += 1
    counts = []
    for iteration, phase in order:
        info = _info(store.phase_dir(iteration, phase)) or {}
        counts.append((iteration, int((info.get("teacher") or {}).get("failures", 0))))
    if sum(n for _, n in counts) != len(records):
        return {None: records}
    found: dict[int | None, list[dict[str, Any]]] = {}
    start = 0
    for iteration, n in counts:
        if n:
            found.setdefault(iteration, []).extend(records[start : start + n])
            start += n
    return found


@dataclass
class RunData:
    """A run's data per iteration, and the teacher failures no iteration can claim (run-level
    phases, or records a redone phase logged twice)."""

    iterations: list[IterationData]
    unplaced_failures: list[dict[str, Any]]


def load_run_data(run_dir: Path) -> RunData:
    """Every iteration the run has a folder for, in order."""
    store = RunStore(run_dir)
    failures = teacher_failures(store)
    found = []
    i = 0
    while store.iter_dir(i).is_dir():
        data = _read_iteration(store, i)
        data.teacher_failures = failures.get(i, [])
        found.append(data)
        i += 1
    return RunData(found, failures.get(None, []))
