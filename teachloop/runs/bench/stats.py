"""Uncertainty of a bench's figures, from the run folders alone.

Every figure a leaderboard ranks (final accuracy, area under the curve, weak-skill gain) is a
mean over seeds of a mean over eval items. Its 95 % interval comes from a two-level
bootstrap: resample the seeds, then within each seed the eval items (the same items at
every iteration of that run, so a gain is measured on one set of items). A difference
between two policies is *paired*: the same seeds, and within a seed the same resampled
items for both, since both runs of a seed answer the same eval set. The verdict is "better"
or "worse" when the difference's interval excludes 0, else "not distinguishable".

With one seed only the items are resampled: the interval then says nothing about how much
another seed would move the figure, and the leaderboard says so.

Resampling uses a fixed seed per (environment, policy, figure), so a rerun on the same run
folders gives the same intervals.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from teachloop.runs.loop.artifacts import EvalFiles
from teachloop.runs.loop.store import RunStore

RESAMPLES = 2000
LEVEL = 0.95
Verdict = Literal["better", "worse", "not distinguishable"]
FIGURES = ("final_accuracy", "auc", "weak_gain")


@dataclass(frozen=True)
class RunItems:
    """One finished run's eval, item by item: `correct[t, j]` is item j at iteration t."""

    item_ids: tuple[str, ...]
    correct: np.ndarray  # (iterations + 1, items), 0/1
    skills: dict[str, np.ndarray]  # skill -> mask over the items labelled with it
    weak: tuple[str, ...]  # the run's skills below the weak threshold at iteration 0

    @classmethod
    def load(cls, run_dir: Path, weak: Sequence[str]) -> RunItems:
        store = RunStore(run_dir)
        iterations = store.config().iterations
        rows = [EvalFiles.read_attempts(store.phase_dir(i, "eval")) for i in range(iterations + 1)]
        order = [a.example_id for a in rows[0]]
        correct = np.zeros((len(rows), len(order)))
        for t, attempts in enumerate(rows):
            by_id = {a.example_id: a.correct for a in attempts}
            correct[t] = [by_id[item] for item in order]
        names = sorted({s for a in rows[0] for s in a.skills})
        skills = {s: np.array([s in a.skills for a in rows[0]]) for s in names}
        return cls(item_ids=tuple(order), correct=correct, skills=skills, weak=tuple(weak))


# a figure of one run, for a batch of item resamples `idx` (resamples x items) -> (resamples,)
Figure = Callable[[RunItems, np.ndarray], np.ndarray]


def final_accuracy(run: RunItems, idx: np.ndarray) -> np.ndarray:
    return run.correct[-1][idx].mean(axis=1)


def auc(run: RunItems, idx: np.ndarray) -> np.ndarray:
    return run.correct[:, idx].mean(axis=(0, 2))


def weak_gain(run: RunItems, idx: np.ndarray) -> np.ndarray:
    """Mean over the run's weak skills of (last - first accuracy); a skill no resampled item
    carries drops out of that resample's mean."""
    if not run.weak or len(run.correct) < 2:
        return np.zeros(len(idx))
    gains = []
    for skill in run.weak:
        mask = run.skills[skill][idx]
        count = mask.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            first = (run.correct[0][idx] * mask).sum(axis=1) / count
            last = (run.correct[-1][idx] * mask).sum(axis=1) / count
        gains.append(last - first)
    with warnings.catch_warnings():  # a resample with no item of any weak skill: NaN, left out by nanpercentile
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.vstack(gains), axis=0)


def final_gain(run: RunItems, idx: np.ndarray) -> np.ndarray:
    """Overall accuracy, last minus first iteration: did the student end better than it began?"""
    return run.correct[-1][idx].mean(axis=1) - run.correct[0][idx].mean(axis=1)


FIGURE_FUNCTIONS: dict[str, Figure] = {
    "final_accuracy": final_accuracy,
    "final_gain": final_gain,
    "auc": auc,
    "weak_gain": weak_gain,
}


class Interval(BaseModel):
    estimate: float
    lo: float
    hi: float


class PairedDifference(BaseModel):
    """A figure of one policy minus the baseline's, on the seeds both finished."""

    baseline: str
    difference: float
    lo: float
    hi: float
    seeds: int
    verdict: Verdict

    def show(self, scale: float = 1.0, digits: int = 1) -> str:
        return (
            f"{self.difference * scale:+.{digits}f} [{self.lo * scale:+.{digits}f}, {self.hi * scale:+.{digits}f}] "
            f"{self.verdict}"
        )


def _rng(*key: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("\x00".join(key).encode()))


def _per_seed(runs: Sequence[RunItems], figure: Figure, rng: np.random.Generator) -> np.ndarray:
    """(seeds, resamples): the figure of each run on its own item resamples."""
    out = np.empty((len(runs), RESAMPLES))
    for k, run in enumerate(runs):
        idx = rng.integers(0, len(run.item_ids), size=(RESAMPLES, len(run.item_ids)))
        out[k] = figure(run, idx)
    return out


def _seed_means(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Resample the seeds too: per resample, the mean over a draw of seeds with replacement."""
    seeds = values.shape[0]
    if seeds == 1:
        return values[0]
    choice = rng.integers(0, seeds, size=(RESAMPLES, seeds))
    return np.take_along_axis(values.T, choice, axis=1).mean(axis=1)


def _bounds(samples: np.ndarray) -> tuple[float, float]:
    tail = (1 - LEVEL) / 2 * 100
    lo, hi = np.nanpercentile(samples, [tail, 100 - tail])
    return float(lo), float(hi)


def interval(runs: Sequence[RunItems], figure: str, *key: str) -> Interval:
    """The figure's mean over the runs (one per seed) and its bootstrap interval."""
    function = FIGURE_FUNCTIONS[figure]
    rng = _rng(figure, *key)
    full = [function(run, np.arange(len(run.item_ids))[None, :])[0] for run in runs]
    lo, hi = _bounds(_seed_means(_per_seed(runs, function, rng), rng))
    return Interval(estimate=float(np.mean(full)), lo=lo, hi=hi)


def group_final_accuracy(runs: Sequence[RunItems], skills: set[str], *key: str) -> Interval | None:
    """Final accuracy on the items labelled with any of `skills` (a skill group and the skills
    below it), mean over the runs, with its bootstrap interval; None where no item has them."""

    def figure(run: RunItems, idx: np.ndarray) -> np.ndarray:
        mask = np.zeros(len(run.item_ids), dtype=bool)
        for skill in skills & set(run.skills):
            mask |= run.skills[skill]
        chosen = mask[idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            return (run.correct[-1][idx] * chosen).sum(axis=1) / chosen.sum(axis=1)

    whole = [figure(run, np.arange(len(run.item_ids))[None, :])[0] for run in runs]
    if not runs or all(np.isnan(whole)):
        return None
    rng = _rng("group", *sorted(skills), *key)
    lo, hi = _bounds(_seed_means(_per_seed(runs, figure, rng), rng))
    return Interval(estimate=float(np.nanmean(whole)), lo=lo, hi=hi)


def paired_difference(
    runs: dict[int, RunItems], baseline_runs: dict[int, RunItems], figure: str, baseline: str, *key: str
) -> PairedDifference | None:
    """`runs` and `baseline_runs` by seed; None when they share no seed with the same eval items."""
    seeds = [s for s in sorted(runs) if s in baseline_runs and runs[s].item_ids == baseline_runs[s].item_ids]
    if not seeds:
        return None
    function = FIGURE_FUNCTIONS[figure]
    rng = _rng("paired", figure, baseline, *key)
    diffs = np.empty((len(seeds), RESAMPLES))
    full = []
    for k, seed in enumerate(seeds):
        mine, theirs = runs[seed], baseline_runs[seed]
        idx = rng.integers(0, len(mine.item_ids), size=(RESAMPLES, len(mine.item_ids)))
        diffs[k] = function(mine, idx) - function(theirs, idx)
        whole = np.arange(len(mine.item_ids))[None, :]
        full.append(function(mine, whole)[0] - function(theirs, whole)[0])
    lo, hi = _bounds(_seed_means(diffs, rng))
    verdict: Verdict = "better" if lo > 0 else "worse" if hi < 0 else "not distinguishable"
    return PairedDifference(
        baseline=baseline, difference=float(np.mean(full)), lo=lo, hi=hi, seeds=len(seeds), verdict=verdict
    )


def detectable_difference(differences: Sequence[PairedDifference]) -> float | None:
    """About the smallest difference these seeds and items tell apart at 95 % with 80 % power:
    2.8 standard errors of a paired difference (the median of the observed ones, the
    interval's width / 3.92 each)."""
    errors = sorted((d.hi - d.lo) / 3.92 for d in differences)
    return 2.8 * errors[len(errors) // 2] if errors else None


# -- forgetting: what happened to the skills the data did not target -----------------------
class Forgetting(BaseModel):
    """Per (environment, policy), next to the targeted (weak-skill) gain: the mean change on
    the skills that were not weak at iteration 0, the worst change of any skill, and the
    skills that were strong at iteration 0 and lost more than their interval allows (its
    upper end below 0)."""

    untargeted: Interval | None  # last - first accuracy, mean over the skills not weak at iteration 0
    worst_skill: str | None
    worst_change: float | None
    forgotten: list[str]


def _skill_change(run: RunItems, skill: str, idx: np.ndarray) -> np.ndarray:
    mask = run.skills[skill][idx]
    count = mask.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((run.correct[-1][idx] - run.correct[0][idx]) * mask).sum(axis=1) / count


def forgetting(runs: Sequence[RunItems], *key: str) -> Forgetting:
    """`runs`: one per seed, on the same skills."""
    weak = {s for run in runs for s in run.weak}
    skills = sorted(set.intersection(*(set(run.skills) for run in runs)) - weak) if runs else []
    if not skills or any(len(run.correct) < 2 for run in runs):
        return Forgetting(untargeted=None, worst_skill=None, worst_change=None, forgotten=[])
    rng = _rng("forgetting", *key)
    per_skill: dict[str, np.ndarray] = {}  # skill -> (resamples,) over seeds and items
    estimates: dict[str, float] = {}
    idx_of = [rng.integers(0, len(run.item_ids), size=(RESAMPLES, len(run.item_ids))) for run in runs]
    for skill in skills:
        values = np.vstack([_skill_change(run, skill, idx) for run, idx in zip(runs, idx_of, strict=True)])
        per_skill[skill] = _seed_means(values, rng)
        whole = [_skill_change(run, skill, np.arange(len(run.item_ids))[None, :])[0] for run in runs]
        estimates[skill] = float(np.nanmean(whole))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_change = np.nanmean(np.vstack(list(per_skill.values())), axis=0)
    lo, hi = _bounds(mean_change)
    worst = min(estimates, key=lambda s: estimates[s])
    forgotten = [s for s in skills if _bounds(per_skill[s])[1] < 0]
    return Forgetting(
        untargeted=Interval(estimate=float(np.mean(list(estimates.values()))), lo=lo, hi=hi),
        worst_skill=worst,
        worst_change=estimates[worst],
        forgotten=forgotten,
    )
