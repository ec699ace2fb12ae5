"""What a teacher's data looks like, measured on the data alone (no student): yield and
rejections, prompt and answer length, diversity and novelty. Read from a run folder's data
phases (iteration_data.py), for the bench's teachers table, and set against the student's
gain across the bench's runs: do the measures predict what the data does?

Text is compared as lower-cased word sequences. *Diversity*: distinct word 1- and 2-grams over
all the examples' prompts and answers (distinct / total), and the near-duplicate rate: the share
of examples whose prompt shares at least NEAR_DUPLICATE of its word set (Jaccard) with another
example's (on at most NEAR_DUPLICATE_SAMPLE examples, the first ones). *Novelty* against a
reference set (the seed pool, the eval set): the mean share of an example's prompt word 2-grams
(with start and end marks, so a one-word prompt has two) that appear in no reference prompt.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from teachloop.runs.reporting.iteration_data import load_run_data
from teachloop.types import Example

NEAR_DUPLICATE = 0.8
NEAR_DUPLICATE_SAMPLE = 400
WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def bigrams(text: str) -> set[tuple[str, str]]:
    tokens = ["<s>", *words(text), "</s>"]
    return set(zip(tokens, tokens[1:], strict=False))


class DataMeasures(BaseModel):
    """One run's new data (every data phase), or the mean over a row's runs."""

    asked: float = 0
    kept: float = 0  # new examples kept (pool draws not counted)
    rejected: dict[str, float] = Field(default_factory=dict)  # by reason
    prompt_words: float | None = None  # mean per kept example
    answer_words: float | None = None
    distinct_1: float | None = None
    distinct_2: float | None = None
    near_duplicates: float | None = None  # share of kept examples
    novelty_pool: float | None = None
    novelty_eval: float | None = None

    @property
    def yield_ratio(self) -> float | None:
        return self.kept / self.asked if self.asked else None

    @classmethod
    def mean(cls, runs: Sequence[DataMeasures]) -> DataMeasures:
        def avg(values: Iterable[float | None]) -> float | None:
            found = [v for v in values if v is not None]
            return statistics.fmean(found) if found else None

        reasons = sorted({r for run in runs for r in run.rejected})
        return cls(
            asked=statistics.fmean(r.asked for r in runs),
            kept=statistics.fmean(r.kept for r in runs),
            rejected={r: statistics.fmean(run.rejected.get(r, 0) for run in runs) for r in reasons},
            **{name: avg(getattr(r, name) for r in runs) for name in cls.model_fields if name not in COUNTED},
        )


COUNTED = ("asked", "kept", "rejected")  # DataMeasures' counts; the other fields are optional measures
# the measures set against the gain (DataMeasures attributes, yield_ratio a property)
PREDICTORS = (
    "yield_ratio", "prompt_words", "answer_words", "distinct_1", "distinct_2", "near_duplicates", "novelty_pool",
    "novelty_eval",
)  # fmt: skip


def distinct(texts: Sequence[str], n: int) -> float | None:
    grams: list[tuple[str, ...]] = []
    for text in texts:
        tokens = words(text)
        grams += [tuple(tokens[k : k + n]) for k in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else None


def near_duplicate_rate(prompts: Sequence[str]) -> float | None:
    sets = [set(words(p)) for p in prompts[:NEAR_DUPLICATE_SAMPLE]]
    if len(sets) < 2:
        return None
    near = [False] * len(sets)
    for i, a in enumerate(sets):
        for j in range(i + 1, len(sets)):
            b = sets[j]
            union = len(a | b)
            if union and len(a & b) / union >= NEAR_DUPLICATE:
                near[i] = near[j] = True
    return sum(near) / len(sets)


def novelty(prompts: Sequence[str], reference: set[tuple[str, str]] | None) -> float | None:
    if not prompts or not reference:
        return None
    shares = []
    for prompt in prompts:
        grams = bigrams(prompt)
        shares.append(len(grams - reference) / len(grams))
    return statistics.fmean(shares)


def reference_bigrams(prompts: Iterable[str]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for prompt in prompts:
        found |= bigrams(prompt)
    return found


def measure_examples(
    examples: Sequence[Example],
    asked: int,
    rejected: dict[str, int],
    pool: set[tuple[str, str]] | None,
    eval_set: set[tuple[str, str]] | None,
) -> DataMeasures:
    prompts, answers = [e.prompt for e in examples], [e.answer for e in examples]
    texts = [f"{p}\n{a}" for p, a in zip(prompts, answers, strict=True)]
    return DataMeasures(
        asked=asked,
        kept=len(examples),
        rejected=dict(rejected),
        prompt_words=statistics.fmean(len(words(p)) for p in prompts) if prompts else None,
        answer_words=statistics.fmean(len(words(a)) for a in answers) if answers else None,
        distinct_1=distinct(texts, 1),
        distinct_2=distinct(texts, 2),
        near_duplicates=near_duplicate_rate(prompts),
        novelty_pool=novelty(prompts, pool),
        novelty_eval=novelty(prompts, eval_set),
    )


def measure_run(
    run_dir: Path, pool: set[tuple[str, str]] | None, eval_set: set[tuple[str, str]] | None
) -> DataMeasures:
    """The new examples of every data phase of a run (pool draws left out), measured."""
    examples: list[Example] = []
    asked, rejected = 0, Counter[str]()
    for data in load_run_data(run_dir).iterations:
        examples += [e for e in data.examples or [] if e.source == "generated"]
        if data.data_yield is not None:
            asked += data.data_yield.asked
            rejected.update(data.data_yield.rejected)
    return measure_examples(examples, asked, dict(rejected), pool, eval_set)


def eval_prompts(run_dir: Path) -> list[str]:
    """The eval set's prompts, as the run's first evaluation recorded them."""
    from teachloop.runs.loop.artifacts import EvalFiles
    from teachloop.runs.loop.store import RunStore

    folder = RunStore(run_dir).phase_dir(0, "eval")
    return [a.prompt for a in EvalFiles.read_attempts(folder)] if EvalFiles.has_attempts(folder) else []


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None below 3 pairs or for a constant."""
    if len(xs) < 3:
        return None

    def ranks(values: Sequence[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda k: values[k])
        found = [0.0] * len(values)
        k = 0
        while k < len(order):
            end = k
            while end + 1 < len(order) and values[order[end + 1]] == values[order[k]]:
                end += 1
            for m in range(k, end + 1):
                found[order[m]] = (k + end) / 2
            k = end + 1
        return found

    rx, ry = ranks(xs), ranks(ys)
    if len(set(rx)) < 2 or len(set(ry)) < 2:
        return None
    return statistics.correlation(rx, ry)


class Predictor(BaseModel):
    """How one measure orders the runs by their weak-skill gain."""

    measure: str
    spearman: float | None
    runs: int


def predictors(measures: Sequence[DataMeasures], gains: Sequence[float]) -> list[Predictor]:
    """Per measure, Spearman's correlation with the weak-skill gain across runs (runs without
    the measure left out), strongest first."""
    found = []
    for name in PREDICTORS:
        pairs = [(v, g) for m, g in zip(measures, gains, strict=True) if (v := getattr(m, name)) is not None]
        rho = spearman([v for v, _ in pairs], [g for _, g in pairs])
        found.append(Predictor(measure=name, spearman=rho, runs=len(pairs)))
    return sorted(found, key=lambda p: -abs(p.spearman) if p.spearman is not None else 1.0)
