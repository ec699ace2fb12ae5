"""What an environment promises, checked when it is loaded, before anything is spent (like
Gymnasium's env checker): every labelled item names skills of its own tree, and `score`
turns an item and an answer into an `Attempt`. `describe_environment` is the report
`teachloop environments check` prints."""

from __future__ import annotations

import random
from collections import Counter

from teachloop.environments.base import Environment, checker_of, item_form
from teachloop.errors import PluginError
from teachloop.types import Attempt, Example

SHOWN = 5  # unknown labels listed in an error
FORMS_SHOWN = 12  # item forms `environments check` prints (a task may have a hundred skills)


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


def describe_environment(env: Environment, items: int = 3) -> list[str]:
    """What `teachloop environments check` prints, one entry per echoed line (an entry may
    hold several): the skill tree, the split sizes, `items` eval items scored against their
    own answers, the generator, the checker and the item forms for the teacher."""
    eval_set, pool = env.eval_set(), env.train_pool()
    leaves = env.skills.leaves()
    lines = [env.skills.render(), f"\neval items: {len(eval_set)}; train pool: {len(pool)}; skills: {len(leaves)}"]
    lines.append(per_skill_counts(leaves, eval_set, pool))
    for example in eval_set[:items]:
        attempt = env.score(example, example.answer)
        lines.append(f"\n[{', '.join(example.skills) or 'unlabelled'}] {example.prompt.strip()!r}")
        lines.append(f"  answer {example.answer!r}: scored {'correct' if attempt.correct else 'WRONG'} against itself")
    generate = getattr(env, "generate", None)
    checker = checker_of(env)
    made = []
    if generate is not None:
        for skill in leaves:
            made += generate(skill, 1, random.Random(0))
    lines.append(
        f"\ngenerator: {'yes, 1 item per skill made' if generate is not None else 'none (the llm engine writes data)'}"
    )
    if checker is not None and made:
        kept = sum(bool(checker(example)) for example in made)
        lines.append(f"checker: {kept} of {len(made)} generated items pass")
    else:
        lines.append(f"checker: {'yes' if checker is not None else 'none (verify by consistency or not at all)'}")
    forms = [(skill, item_form(env, skill)) for skill in leaves]
    forms = [(skill, form) for skill, form in forms if form.question is not None or form.answer is not None]
    if not forms:
        lines.append("item forms for the teacher: none (free text)")
    else:
        lines.append(
            f"item forms for the teacher (regular expressions, matched in full), {len(forms)} of {len(leaves)} skills:"
        )
        for skill, form in forms[:FORMS_SHOWN]:
            said = (("question", form.question), ("answer", form.answer))
            parts = [f"{part} {text!r}" for part, text in said if text]
            lines.append(f"  {skill}: {', '.join(parts)}")
        if len(forms) > FORMS_SHOWN:
            lines.append(f"  ... and {len(forms) - FORMS_SHOWN} more")
    return [*lines, "checks passed"]


def per_skill_counts(leaves: list[str], eval_set: list[Example], pool: list[Example]) -> str:
    """'eval / pool items per skill: add 2/9, ...' (FORMS_SHOWN skills at most, the fewest eval
    items first when there are more), then the skills with no eval item, each named."""
    counts = {skill: [0, 0] for skill in leaves}
    for column, items in enumerate((eval_set, pool)):
        for example in items:
            for skill in example.skills:
                if skill in counts:  # a label naming a group is measured through the skills below it
                    counts[skill][column] += 1
    shown = list(counts)
    if len(shown) > FORMS_SHOWN:
        shown = sorted(shown, key=lambda s: counts[s][0])[:FORMS_SHOWN]
    more = f", ... and {len(counts) - len(shown)} more" if len(counts) > len(shown) else ""
    line = "eval / pool items per skill: " + ", ".join(f"{s} {counts[s][0]}/{counts[s][1]}" for s in shown) + more
    unmeasured = [s for s, (n_eval, _) in counts.items() if not n_eval]
    if unmeasured:
        rest = f" and {len(unmeasured) - FORMS_SHOWN} more" if len(unmeasured) > FORMS_SHOWN else ""
        line += f"\nno eval items (no accuracy measured): {', '.join(unmeasured[:FORMS_SHOWN])}{rest}"
    return line
