"""Serving a plan's `pool_samples`: draw seed-pool items by the plan's weights."""

from __future__ import annotations

import random

from teachloop.types import DataPlan, Example, Lineage


def draw_from_pool(plan: DataPlan, pool: list[Example], seed: int) -> list[Example]:
    """`plan.pool_samples` items, probability ∝ weight; without replacement while the pool lasts.

    Items keep their content and get lineage pointing at the pool item they repeat.
    """
    if not plan.pool_samples or not pool:
        return []
    weights = plan.weights or {}
    candidates = [ex for ex in pool if (weights.get(ex.id, 0.0) if plan.weights else 1.0) > 0]
    if not candidates:
        return []
    rng = random.Random(f"{seed}:{plan.iteration}:pool")
    w = [weights.get(ex.id, 1.0) if plan.weights else 1.0 for ex in candidates]
    chosen: list[Example] = []
    while len(chosen) < plan.pool_samples:
        need = plan.pool_samples - len(chosen)
        if need >= len(candidates):  # every item once more, then the remainder by weight
            chosen.extend(candidates)
            continue
        # weighted sampling without replacement (Efraimidis-Spirakis keys)
        keyed = sorted(range(len(candidates)), key=lambda i: -(rng.random() ** (1.0 / w[i])))
        chosen.extend(candidates[i] for i in keyed[:need])
    return [
        ex.model_copy(
            update={"lineage": Lineage(iteration=plan.iteration, policy=plan.policy, teacher="pool", parent_id=ex.id)}
        )
        for ex in chosen
    ]
