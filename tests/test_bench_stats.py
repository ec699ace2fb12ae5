"""The bench's intervals and paired verdicts (teachloop/runs/bench/stats.py) on runs whose
answers are known item by item."""

import numpy as np
import pytest

from teachloop.runs.bench.stats import RunItems, detectable_difference, interval, paired_difference


def run(correct: list[list[int]], skills: dict[str, list[bool]] | None = None, weak=("a",)) -> RunItems:
    items = len(correct[0])
    skills = skills or {"a": [j % 2 == 0 for j in range(items)], "b": [j % 2 == 1 for j in range(items)]}
    return RunItems(
        item_ids=tuple(f"x{j}" for j in range(items)),
        correct=np.array(correct, dtype=float),
        skills={k: np.array(v) for k, v in skills.items()},
        weak=weak,
    )


def coin(rng: np.random.Generator, p: list[float], items: int = 200) -> list[list[int]]:
    return [list((rng.random(items) < q).astype(int)) for q in p]


def test_estimates_are_the_leaderboard_figures_and_the_interval_holds_them():
    first = run([[0, 0, 1, 1], [1, 0, 1, 1]])  # a: items 0, 2; weak skill a goes 0.5 -> 1.0
    assert interval([first], "final_accuracy", "k").estimate == pytest.approx(0.75)
    assert interval([first], "auc", "k").estimate == pytest.approx((0.5 + 0.75) / 2)
    gain = interval([first], "weak_gain", "k")
    assert gain.estimate == pytest.approx(0.5) and gain.lo <= gain.estimate <= gain.hi


def test_more_items_and_seeds_narrow_the_interval_and_a_rerun_gives_the_same_numbers():
    rng = np.random.default_rng(1)
    small = [run(coin(rng, [0.5, 0.7], items=40))]
    large = [run(coin(rng, [0.5, 0.7], items=400)) for _ in range(3)]
    narrow, wide = interval(large, "final_accuracy", "k"), interval(small, "final_accuracy", "k")
    assert narrow.hi - narrow.lo < (wide.hi - wide.lo) / 2
    assert interval(large, "final_accuracy", "k") == narrow  # fixed resampling seeds: reproducible


def test_a_paired_difference_tells_a_real_gain_from_noise():
    rng = np.random.default_rng(2)
    base = {s: run(coin(rng, [0.5, 0.6])) for s in range(3)}
    # the same eval items, with 15 more points right at the end: better, by about 0.15
    better = {
        s: run([list(r.correct[0].astype(int)), list(np.maximum(r.correct[1], rng.random(200) < 0.4).astype(int))])
        for s, r in base.items()
    }
    diff = paired_difference(better, base, "final_accuracy", "uniform", "k")
    assert diff is not None and diff.verdict == "better" and diff.lo > 0 and diff.seeds == 3
    assert diff.lo <= diff.difference <= diff.hi
    worse = paired_difference(base, better, "final_accuracy", "uniform", "k")
    assert worse is not None and worse.verdict == "worse"
    same = paired_difference(base, base, "final_accuracy", "uniform", "k")
    assert same is not None and same.verdict == "not distinguishable" and same.difference == 0
    # a second draw of the same student is not better, however it lands
    again = {s: run(coin(rng, [0.5, 0.6])) for s in range(3)}
    noise = paired_difference(again, base, "final_accuracy", "uniform", "k")
    assert noise is not None and noise.lo < 0 < noise.hi
    assert detectable_difference([noise, diff]) > 0


def test_runs_on_different_eval_items_are_not_paired():
    a = {0: run([[1, 0], [1, 1]])}
    b = {0: RunItems(item_ids=("y0", "y1"), correct=np.ones((2, 2)), skills={}, weak=())}
    assert paired_difference(a, b, "final_accuracy", "uniform", "k") is None
    assert paired_difference(a, {1: a[0]}, "final_accuracy", "uniform", "k") is None  # no common seed


def test_forgetting_names_a_strong_skill_that_was_lost_and_not_one_that_held():
    from teachloop.runs.bench.stats import forgetting

    items = 200
    skills = {
        "weak": [j % 3 == 0 for j in range(items)],
        "held": [j % 3 == 1 for j in range(items)],
        "lost": [j % 3 == 2 for j in range(items)],
    }
    start = [0 if j % 3 == 0 else 1 for j in range(items)]  # weak all wrong, the others all right
    end = [1 if j % 3 == 0 else 1 if j % 3 == 1 else int(j % 2 == 0) for j in range(items)]  # "lost": half wrong now
    runs = [run([start, end], skills, weak=("weak",)) for _ in range(2)]
    found = forgetting(runs, "k")
    assert found.forgotten == ["lost"] and found.worst_skill == "lost"
    assert found.worst_change == pytest.approx(-0.5, abs=0.02)
    assert found.untargeted is not None and found.untargeted.estimate == pytest.approx(-0.25, abs=0.01)
    assert found.untargeted.hi < 0
