import pytest

from teachloop.agents.state import TeacherState
from teachloop.environments.skillworld import build_skill_tree
from teachloop.skills import SkillTree, SkillTreeError
from teachloop.skills.profile import eval_report, missing_skill_profile
from teachloop.skills.tree_file import read_tree_file
from teachloop.types import Attempt, Feedback, MissingSkillProfile


def attempt(eid: str, correct: bool, skills: list[str]) -> Attempt:
    return Attempt(example_id=eid, prompt=eid, response="x", reference="y", correct=correct, score=float(correct), skills=skills)


def test_tree_structure_and_roundtrip(tmp_path):
    tree = build_skill_tree()
    assert tree.children() == ["text", "number"]
    assert set(tree.leaves()) == {"first", "copy", "reverse", "double", "len", "max", "parity", "succ"}
    assert tree.parent("reverse") == "text" and tree.parent("text") is None
    assert tree.leaves_under("number") == ["len", "max", "parity", "succ"]
    tree.save(tmp_path / "skills.json")
    again = read_tree_file(tmp_path / "skills.json")
    assert again == tree and again.description("max") == tree.description("max")
    assert '"edges"' in (tmp_path / "skills.json").read_text()  # node-link with an explicit edges key


def test_tree_rejects_bad_input():
    tree = SkillTree.from_list({"a": "skill a"})
    with pytest.raises(SkillTreeError, match="unknown parent"):
        tree.add("b", parent="nope")
    with pytest.raises(SkillTreeError, match="already exists"):
        tree.add("a")
    with pytest.raises(SkillTreeError, match="root"):
        SkillTree.from_dict({"directed": True, "multigraph": False, "graph": {}, "nodes": [{"id": "x"}], "edges": []})


def test_aggregate_counts_descendants():
    tree = build_skill_tree()
    acc = tree.aggregate({"copy": 3, "reverse": 0, "max": 2}, {"copy": 4, "reverse": 4, "max": 2})
    assert acc["copy"] == 0.75 and acc["reverse"] == 0.0
    assert acc["text"] == pytest.approx(3 / 8)
    assert acc["number"] == 1.0
    assert "len" not in acc  # nothing labelled with it


def test_skill_tree_inside_pydantic_models():
    tree = build_skill_tree()
    feedback = Feedback(iteration=0, accuracy=0.5, skill_accuracy={}, profile=MissingSkillProfile())
    state = TeacherState(iteration=0, seed=0, budget=10, feedback=feedback, skill_tree=tree)
    again = TeacherState.model_validate_json(state.model_dump_json())
    assert again.skill_tree == tree


def test_missing_skill_profile_counts_failed_items_per_skill():
    attempts = [
        attempt("1", False, ["reverse"]),
        attempt("2", False, ["reverse", "copy"]),
        attempt("3", True, ["copy"]),
        attempt("4", False, ["max"]),
    ]
    report = eval_report(0, attempts)
    assert report.skill_accuracy == {"copy": 0.5, "max": 0.0, "reverse": 0.0}
    profile = missing_skill_profile(report.failures())
    assert profile.counts == {"copy": 1, "max": 1, "reverse": 2}
    assert profile.n_hard == 3
    assert profile.shares()["reverse"] == 0.5
    assert profile.per_item["2"] == ["reverse", "copy"]
