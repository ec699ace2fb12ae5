"""An environment is checked when it loads, before anything is spent: items labelled with
skills outside its tree, or a `score` that returns something other than an Attempt, are a
one-line error naming what to fix (they used to surface as an extra "weak skill" column, or
as an AttributeError after the whole evaluation)."""

import pytest

from teachloop.environments import ENVIRONMENTS, exact_attempt, get_environment
from teachloop.errors import PluginError
from teachloop.registry import Component
from teachloop.skills.tree import SkillTree
from teachloop.types import Example


class Tiny(Component):
    """Two skills; `labels` and `bool_score` break it the two ways a new author did."""

    kind = "environment"
    name = "tiny"
    labels = ("up", "down")
    bool_score = False

    def setup(self) -> None:
        self.skills = SkillTree("tiny")
        self.skills.add("up", "upper-case a word")
        self.skills.add("down", "lower-case a word")
        words = ["ab", "cd", "ef", "gh"]
        self.items = [
            Example(prompt=f"{w}\n", answer=w.upper(), skills=[self.labels[k % 2]]) for k, w in enumerate(words)
        ]

    def eval_set(self) -> list[Example]:
        return self.items

    def train_pool(self) -> list[Example]:
        return self.items

    def score(self, example, response):
        if self.bool_score:
            return response.strip() == example.answer
        return exact_attempt(example, response)


@pytest.fixture
def registered():
    made = []

    def register(name: str, **attributes):
        ENVIRONMENTS.register(name, type(name, (Tiny,), {"name": name, **attributes}))
        made.append(name)
        return name

    yield register
    for name in made:
        ENVIRONMENTS.unregister(name)


def test_a_sound_environment_loads(registered):
    assert get_environment(registered("tiny-ok")).skills.leaves() == ["up", "down"]


def test_labels_outside_the_tree_are_refused_when_it_loads(registered):
    name = registered("tiny-labels", labels=("up", "sideways"))
    with pytest.raises(PluginError, match=r"environment 'tiny-labels': eval items are labelled with skills its tree "
                       r"does not have: 'sideways' \(2 items\); add them to the tree"):  # fmt: skip
        get_environment(name)


def test_a_score_that_returns_a_bool_is_refused_when_it_loads(registered, tmp_path):
    from typer.testing import CliRunner

    from teachloop.cli import app

    name = registered("tiny-bool", bool_score=True)
    with pytest.raises(PluginError, match="score\\(\\) must return a teachloop.types.Attempt .*got bool"):
        get_environment(name)
    result = CliRunner().invoke(app, ["run", "--env", name, "--out", str(tmp_path), "--name", "r", "--quiet"])
    assert isinstance(result.exception, PluginError) and not (tmp_path / "r").exists()  # before any evaluation


def test_environments_check_prints_the_tree_splits_items_and_capabilities(registered):
    from typer.testing import CliRunner

    from teachloop.cli import app

    out = CliRunner().invoke(app, ["environments", "check", "skillworld", "--env-option", "eval_per_skill=2"])
    assert out.exit_code == 0, out.output
    assert "- reverse: write a word backwards" in out.output and "eval items: 16; train pool: 800" in out.output
    assert "scored correct against itself" in out.output and "checker: 8 of 8 generated items pass" in out.output
    # the forms the teacher's items must match, per skill, not a class name (issue 34 item 11)
    assert "ItemForm" not in out.output and "item forms for the teacher (regular expressions" in out.output
    assert "  reverse: question 'reverse [a-l]{3,4}', answer '[a-l]{3,4}'\n" in out.output
    free = CliRunner().invoke(app, ["environments", "check", registered("tiny-free")])
    assert free.exit_code == 0 and "item forms for the teacher: none (free text)" in free.output, free.output
    broken = CliRunner().invoke(app, ["environments", "check", registered("tiny-bool2", bool_score=True)])
    assert isinstance(broken.exception, PluginError) and "got bool" in str(broken.exception)


def test_scored_attempt_takes_partial_credit_beside_the_verdict():
    from teachloop.environments import scored_attempt
    from teachloop.types import Example

    item = Example(prompt="sort: b a", answer="a, b", skills=["sort"])
    assert scored_attempt(item, "a, b", True).score == 1.0 and scored_attempt(item, "b", False).score == 0.0
    half = scored_attempt(item, "a, c", False, score=0.5)
    assert not half.correct and half.score == 0.5 and half.skills == ["sort"]
    assert scored_attempt(item, "a, b", True, score=1.7).score == 1.0  # clipped to [0, 1]
