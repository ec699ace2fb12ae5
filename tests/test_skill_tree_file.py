"""Skill hierarchies as data: the skill-tree file, labels from a column or a labels file,
the `jsonl` and `math` environments' `skill_tree` option, and `teachloop skills discover`
output that a user feeds back without ever seeing an internal example id."""

import json
import logging
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from teachloop.agents.teacher import TEACHER_BACKENDS, Backend, Completion, Job
from teachloop.environments import get_environment
from teachloop.errors import TeachloopError
from teachloop.skills.tree_file import read_tree_file, write_tree_file

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hierarchy"
WHOLE = ["addition", "subtraction", "multiplication"]
FRACTIONS = ["fraction-addition", "fraction-of-number"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def example_rows() -> list[dict]:
    return [json.loads(line) for line in (EXAMPLE / "data.jsonl").read_text().splitlines()]


def labelled(env) -> dict[str, list[str]]:
    """question text -> skills over both splits."""
    return {env.template.unfill(ex.prompt): ex.skills for ex in env.eval_set() + env.train_pool()}


# -- the file format ------------------------------------------------------------------------
def test_example_tree_file_reads_with_parents_listed_after_children():
    tree = read_tree_file(EXAMPLE / "skills.yaml")
    assert tree.name == "arithmetic"
    assert tree.children() == ["whole-numbers", "fractions"]  # top level in file order
    assert tree.children("whole-numbers") == WHOLE
    assert tree.parent("addition") == "whole-numbers" and tree.parent("whole-numbers") is None
    assert tree.description("fraction-of-number") == "take a fraction of a whole number"
    assert sorted(tree.leaves()) == sorted(WHOLE + FRACTIONS)


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_write_then_read_gives_the_same_tree(tmp_path, suffix):
    tree = read_tree_file(EXAMPLE / "skills.yaml")
    write_tree_file(tree, tmp_path / f"tree{suffix}")
    assert read_tree_file(tmp_path / f"tree{suffix}") == tree
    if suffix == ".json":
        data = json.loads((tmp_path / "tree.json").read_text())
        assert data["skills"][1] == {
            "name": "addition",
            "parent": "whole-numbers",
            "description": "add two whole numbers",
        }


def test_node_link_json_of_run_folders_still_loads(tmp_path):
    tree = read_tree_file(EXAMPLE / "skills.yaml")
    tree.save(tmp_path / "skills.json")  # what a run folder holds
    assert '"edges"' in (tmp_path / "skills.json").read_text()
    assert read_tree_file(tmp_path / "skills.json") == tree
    # a run's tree is a valid skill_tree option as it is
    env = get_environment(
        "jsonl", path=str(EXAMPLE / "data.jsonl"), skills_field="concept", skill_tree=str(tmp_path / "skills.json")
    )
    assert env.skills == tree


BAD_TREES = [
    (
        "skills:\n  - {name: a}\n  - {name: b, parent: alpha}\n",
        r"entry 2 \('b'\): unknown parent 'alpha'",
    ),
    (
        "skills:\n  - {name: a}\n  - {name: b}\n  - {name: a, parent: b}\n",
        r"entry 3 \('a'\): duplicate name, already entry 1",
    ),
    (
        "skills:\n  - {name: top}\n  - {name: a, parent: b}\n  - {name: b, parent: a}\n",
        r"entry 2 \('a'\): its parents form a cycle: a -> b -> a",
    ),
    ("skills:\n  - {name: a, parent: a}\n", r"entry 1 \('a'\): its parents form a cycle: a -> a"),
    (
        "skills:\n  - {name: a}\n  - just-a-name\n",
        r"entry 2: expected \{name, parent\?, description\?\}, got 'just-a-name'",
    ),
    (
        "skills:\n  - {name: a, parnt: b}\n",
        r"entry 1 \('a'\): parnt: unknown key; an entry is \{name, parent\?, description\?\}",
    ),
    ("skills:\n  - {description: no name}\n", r"entry 1: name: Field required"),
    ("skills:\n  - {name: root}\n", r"entry 1 \('root'\): the name 'root' is reserved"),
    ("skills: []\n", r"skills: List should have at least 1 item"),
    ("- {name: a}\n", r"expected a mapping with a 'skills' list"),
    ("skills: [\n", r"not valid YAML"),
]


@pytest.mark.parametrize(("text", "message"), BAD_TREES)
def test_bad_tree_files_name_the_file_and_the_entry(tmp_path, text, message):
    path = tmp_path / "my-tree.yaml"
    path.write_text(text)
    with pytest.raises(TeachloopError, match=message) as caught:
        read_tree_file(path)
    assert str(path) in str(caught.value)


def test_bad_tree_file_through_an_environment_option(tmp_path):
    (tmp_path / "tree.json").write_text(json.dumps({"skills": [{"name": "a", "parent": "b"}]}))
    with pytest.raises(TeachloopError, match=r"jsonl: skill_tree: skill tree .*tree.json: entry 1 \('a'\): unknown"):
        get_environment(
            "jsonl", path=str(EXAMPLE / "data.jsonl"), skills_field="concept", skill_tree=str(tmp_path / "tree.json")
        )
    with pytest.raises(TeachloopError, match=r"skill tree .*tree.txt: use a .yaml, .yml or .json file"):
        get_environment(
            "math",
            train_file=str(EXAMPLE / "data.jsonl"),
            skills_field="concept",
            skill_tree=str(tmp_path / "tree.txt"),
        )
    with pytest.raises(TeachloopError, match=r"skill tree .*missing.yaml does not exist"):
        read_tree_file(tmp_path / "missing.yaml")


# -- environments with a hierarchy ----------------------------------------------------------
def check_hierarchy(env, caplog) -> None:
    labels = labelled(env)
    assert len(labels) == 30
    assert env.skills == read_tree_file(EXAMPLE / "skills.yaml")
    assert labels["What is 27 + 15?"] == ["addition"]  # a leaf
    assert labels["What is 3 + 4 * 5?"] == ["whole-numbers"]  # an inner node
    assert labels["What is 7/10 - 1/2, as a decimal?"] == ["fractions"]
    unlabelled = sorted(q for q, skills in labels.items() if not skills)
    assert unlabelled == ["What is 6 * 7 + 1/2, as a decimal?", "What is 64 + 36 - 50?"]  # no default skill invented
    assert re.search(r"2 of 30 example\(s\) have no skill label in column 'concept'", caplog.text)


def test_jsonl_with_a_hierarchy(caplog):
    caplog.set_level(logging.WARNING)
    env = get_environment(
        "jsonl",
        path=str(EXAMPLE / "data.jsonl"),
        skills_field="concept",
        skill_tree=str(EXAMPLE / "skills.yaml"),
        scorer="numeric",
    )
    check_hierarchy(env, caplog)


def test_math_with_a_hierarchy(caplog):
    caplog.set_level(logging.WARNING)
    env = get_environment(
        "math", train_file=str(EXAMPLE / "data.jsonl"), skills_field="concept", skill_tree=str(EXAMPLE / "skills.yaml")
    )
    check_hierarchy(env, caplog)


def test_jsonl_reads_the_skills_column_by_default(tmp_path):
    rows = [{**row, "skills": row.pop("concept", None)} for row in example_rows()]
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    env = get_environment("jsonl", path=str(data), skill_tree=str(EXAMPLE / "skills.yaml"))
    assert labelled(env)["What is 1/3 of 27?"] == ["fraction-of-number"]


def test_without_a_tree_labels_stay_a_flat_list_with_a_default():
    env = get_environment("jsonl", path=str(EXAMPLE / "data.jsonl"), skills_field="concept")
    labels = labelled(env)
    assert labels["What is 64 + 36 - 50?"] == ["task"]
    assert env.skills.parent("addition") is None and "task" in env.skills
    maths = get_environment("math", train_file=str(EXAMPLE / "data.jsonl"), skills_field="concept")
    assert labelled(maths)["What is 64 + 36 - 50?"] == ["arithmetic-word-problems"]
    assert maths.skills.children() == sorted(maths.skills.children())  # flat, one node per label


@pytest.mark.parametrize("env_name", ["jsonl", "math"])
def test_labels_not_in_the_tree_are_listed(tmp_path, env_name):
    rows = example_rows()
    rows[0]["concept"], rows[5]["concept"], rows[6]["concept"] = "adding", "Subtraction", "adding"
    rows[7]["concept"] = ["subtraction", "borrowing"]
    data = str(write_jsonl(tmp_path / "data.jsonl", rows))
    source = {"path": data} if env_name == "jsonl" else {"train_file": data}
    message = (
        rf"{env_name}: 3 skill label\(s\) in column 'concept' of \S+ .*data.jsonl are not in skill_tree "
        r".*skills.yaml: Subtraction, adding, borrowing; add them to the tree"
    )
    with pytest.raises(TeachloopError, match=message):
        get_environment(env_name, **source, skills_field="concept", skill_tree=str(EXAMPLE / "skills.yaml"))


@pytest.mark.parametrize("env_name", ["jsonl", "math"])
def test_a_tree_needs_labels(tmp_path, env_name):
    data = str(
        write_jsonl(tmp_path / "data.jsonl", [{"prompt": r["prompt"], "answer": r["answer"]} for r in example_rows()])
    )
    source = {"path": data} if env_name == "jsonl" else {"train_file": data}
    with pytest.raises(TeachloopError, match=r"skill_tree .* needs labels: set skills_field .* or labels_file"):
        get_environment(env_name, **source, skill_tree=str(EXAMPLE / "skills.yaml"))
    with pytest.raises(TeachloopError, match="skills_field .* and labels_file both give labels: choose one"):
        get_environment(env_name, **source, skills_field="concept", labels_file="labels.jsonl")


def test_a_labels_file_is_matched_on_the_question_text(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    data = write_jsonl(
        tmp_path / "data.jsonl", [{"question": r["prompt"], "answer": r["answer"]} for r in example_rows()]
    )
    labels = [
        {"prompt": "What is 27  +  15?", "skills": ["addition"]},  # spacing does not matter
        {"prompt": "What is 3 + 4 * 5?", "skills": ["whole-numbers", "multiplication"]},
        {"prompt": "A question that is not in the data", "skills": ["addition"]},
    ]
    write_jsonl(tmp_path / "labels.jsonl", labels)
    env = get_environment(
        "math",
        train_file=str(data),
        labels_file=str(tmp_path / "labels.jsonl"),
        skill_tree=str(EXAMPLE / "skills.yaml"),
    )
    found = labelled(env)
    assert found["What is 27 + 15?"] == ["addition"]
    assert found["What is 3 + 4 * 5?"] == ["whole-numbers", "multiplication"]
    assert sum(1 for skills in found.values() if not skills) == 28
    assert "1 line(s) of labels_file" in caplog.text and "28 of 30 example(s) have no skill label" in caplog.text

    (tmp_path / "bad.jsonl").write_text('{"prompt": "What is 27 + 15?", "skills": ["addition"]}\n{"id": "ab12"}\n')
    with pytest.raises(TeachloopError, match=r'line 2 of labels_file .*bad.jsonl is not \{"prompt"'):
        get_environment("math", train_file=str(data), labels_file=str(tmp_path / "bad.jsonl"))


# -- discovery writes files the environments read back --------------------------------------
class ScriptedBackend(Backend):
    """A teacher backend registered like any other (`--teacher scripted:x`): it proposes a
    fixed grouped skill list and labels each question by its operator. Everything between
    it and discovery (cache, ledger, validation, the start-up check) is the real client."""

    def reply(self, job: Job) -> dict:
        title = job.json_schema.get("title")
        if title == "ReadyCheck":
            return {"ok": True}
        if title == "SkillProposal":
            return {
                "skills": [
                    {"name": "Adding", "description": "add numbers", "group": "Whole numbers"},
                    {"name": "Taking away", "description": "subtract numbers", "group": "Whole numbers"},
                    {"name": "Parts", "description": "fractions", "group": ""},
                ]
            }
        question = job.messages[-1]["content"].split("Question: ", 1)[1].split("\nAnswer:")[0]
        return {"skills": ["parts" if "/" in question else "taking-away" if " - " in question else "adding"]}

    def complete(self, jobs, events) -> None:
        for index, job in enumerate(jobs):
            events.done(index, Completion(text=json.dumps(self.reply(job)), prompt_tokens=10, completion_tokens=5))


@pytest.fixture
def scripted_teacher():
    TEACHER_BACKENDS.register("scripted", ScriptedBackend)
    yield "scripted:labeller"
    TEACHER_BACKENDS.unregister("scripted")


def test_discover_output_round_trips_into_the_environment(tmp_path, scripted_teacher):
    from teachloop.cli import app

    data = tmp_path / "data.jsonl"
    shutil.copy(EXAMPLE / "data.jsonl", data)
    out = tmp_path / "found" / "skills.yaml"
    result = CliRunner().invoke(
        app,
        ["skills", "discover", "--teacher", scripted_teacher, "--env", "math", "--env-option", f"train_file={data}",
         "--out", str(out), "--cache", str(tmp_path / "cache")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    labels_file = tmp_path / "found" / "skills.labels.jsonl"
    assert f"skill_tree={out}" in result.output and f"labels_file={labels_file}" in result.output

    rows = [json.loads(line) for line in labels_file.read_text().splitlines()]
    assert len(rows) == 30 and all(set(row) == {"prompt", "skills"} for row in rows)  # no internal ids
    assert {"prompt": "What is 83 - 29?", "skills": ["taking-away"]} in rows  # the question as the data has it
    tree = read_tree_file(out)
    assert tree.parent("adding") == "whole-numbers" and tree.parent("parts") is None

    env = get_environment("math", train_file=str(data), skill_tree=str(out), labels_file=str(labels_file))
    found = labelled(env)
    assert env.skills == tree
    assert found["What is 1/3 of 27?"] == ["parts"] and found["What is 400 - 165?"] == ["taking-away"]
    assert all(found.values())  # every question labelled
    jsonl = get_environment("jsonl", path=str(data), skill_tree=str(out), labels_file=str(labels_file))
    assert labelled(jsonl) == found  # the same file serves the jsonl environment (keyed on the prompt)


def test_discover_refuses_an_unknown_tree_suffix(tmp_path):
    from teachloop.cli import app

    result = CliRunner().invoke(
        app, ["skills", "discover", "--teacher", scripted_teacher, "--out", str(tmp_path / "t.txt")]
    )
    assert result.exit_code != 0
    assert "written as .yaml, .yml or .json" in str(result.exception) + result.output


# -- acceptance: the README's command, through jsonl and math ------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    "env_options",
    [
        ["--env", "jsonl", "--env-option", f"path={EXAMPLE / 'data.jsonl'}", "--env-option", "scorer=numeric"],
        ["--env", "math", "--env-option", f"train_file={EXAMPLE / 'data.jsonl'}"],
    ],
    ids=["jsonl", "math"],
)
def test_a_labelled_hierarchy_runs_and_the_run_folder_shows_every_group_and_leaf(tmp_path, env_options):
    from conftest import teachloop

    done = teachloop(
        "run", *env_options, "--env-option", "skills_field=concept",
        "--env-option", f"skill_tree={EXAMPLE / 'skills.yaml'}",
        "--policy", "stat-sel", "--iterations", "1", "--budget", "10", "--out", str(tmp_path), "--name", "h",
        "--max-new-tokens", "8", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    nodes = read_tree_file(EXAMPLE / "skills.yaml").skills()
    records = [json.loads(line) for line in (tmp_path / "h" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for record in records:
        assert set(nodes) <= set(record["node_counts"]), record["node_counts"]
        evaluated = {node for node in nodes if record["node_counts"][node]}
        assert {"whole-numbers", "fractions"} <= evaluated and evaluated <= set(record["node_accuracy"])
        assert record["node_counts"]["(unlabelled)"] >= 1
        # a group counts every item of its skills: whole-numbers covers its three leaves and itself
        whole = record["node_counts"]["whole-numbers"]
        assert whole >= sum(record["node_counts"].get(leaf, 0) for leaf in WHOLE)
    report = (tmp_path / "h" / "report.md").read_text()
    assert all(node in report for node in nodes) and "(unlabelled)" in report
