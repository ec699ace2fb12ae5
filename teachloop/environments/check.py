"""What an environment promises, checked when it is loaded, before anything is spent (like
Gymnasium's env checker): every labelled item names skills of its own tree, and `score`
turns an item and an answer into an `Attempt`."""

from __future__ import annotations

from collections import Counter

from teachloop.environments.base import Environment
from teachloop.errors import PluginError
from teachloop.types import Attempt, Example

SHOWN = 5  # unknown labels listed in an error


def check_environment(env: Environment, name: str) -> None:
    """A one-line PluginError naming the environment and what to fix."""
    for split, items in (("eval", env.eval_set()), ("train pool", env.train_pool())):
        _check_labels(env, name, split, items)
    _check_score(env, name)


def _check_labels(env: Environment, name: str, split: str, items: list[Example]) -> None:
    unknown: Counter[str] = Counter(skill for item in items for skill in item.skills if skill not in env.skills)
    if unknown:
        listed = ", ".join(f"{skill!r} ({n} items)" for skill, n in unknown.most_common(SHOWN))
        more = f" and {len(unknown) - SHOWN} more" if len(unknown) > SHOWN else ""
        raise PluginError(
            f"environment {name!r}: {split} items are labelled with skills its tree does not have: {listed}{more}; "
            f"add them to the tree or fix the labels (tree: {', '.join(env.skills.leaves())})"
        )


def _check_score(env: Environment, name: str) -> None:
    items = env.eval_set() or env.train_pool()
    if not items:
        return  # nothing to score: the run's own checks say what is missing
    item = items[0]
    try:
        scored = env.score(item, item.answer)
    except Exception as exc:  # any failure of a plug-in's score() is reported the same way
        raise PluginError(
            f"environment {name!r}: score(item, its reference answer) raised {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(scored, Attempt):
        raise PluginError(
            f"environment {name!r}: score() must return a teachloop.types.Attempt (build it with "
            f"teachloop.environments.exact_attempt or scored_attempt), got {type(scored).__name__}"
        )
