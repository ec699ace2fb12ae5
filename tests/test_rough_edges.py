"""Issue 20, item 6: a skill tree built in any order, the embedded student's limits checked
before a run, pool draws far larger than the pool, typed JSON Lines exports, one-seed benches."""

import json
import logging
import re
from pathlib import Path

import pytest
from conftest import teachloop

from teachloop.registry import Component, build
from teachloop.runs.config import RunConfig
from teachloop.skills.tree import SkillTree, SkillTreeError
from teachloop.skills.tree_file import read_tree_file


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return path


# -- 1. a skill tree in any order; errors name the tree and the skill, not "options" -----------
def test_from_entries_takes_any_order_and_keeps_it():
    tree = SkillTree.from_entries(
        [
            {"name": "add", "parent": "additive", "description": "a + b"},
            ("mul", "a * b", "multiplicative"),
            {"name": "additive"},
            {"name": "multiplicative", "parent": None},
            ("sub", "", "additive"),
        ],
        name="arith",
    )
    assert tree.name == "arith" and tree.children() == ["additive", "multiplicative"]
    assert tree.children("additive") == ["add", "sub"] and tree.parent("mul") == "multiplicative"
    assert tree.description("add") == "a + b" and tree.leaves() == ["add", "sub", "mul"]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [{"name": "a", "parent": "b"}, {"name": "b", "parent": "a"}],
            r"entry 1 \('a'\): its parents form a cycle: a -> b -> a",
        ),
        ([{"name": "a", "parent": "nope"}], r"entry 1 \('a'\): unknown parent 'nope'"),
        ([{"name": "a"}, {"name": "a"}], r"entry 2 \('a'\): duplicate name, already entry 1"),
        ([{"name": "root"}], r"entry 1 \('root'\): the name 'root' is reserved"),
        ([{"name": "a", "parnt": "b"}], r"entry 1: unknown keys \['parnt'\]"),
    ],
)
def test_from_entries_errors_name_the_tree_the_entry_and_the_skill(entries, message):
    with pytest.raises(SkillTreeError, match=r"^skill tree 'arith': " + message):
        SkillTree.from_entries(entries, name="arith")


def test_tree_file_in_any_order_still_reads(tmp_path):
    path = tmp_path / "tree.yaml"
    path.write_text("skills:\n  - {name: add, parent: additive}\n  - {name: additive}\n")
    assert read_tree_file(path).children() == ["additive"]
    path.write_text("skills:\n  - {name: a, parent: b}\n  - {name: b, parent: a}\n")
    with pytest.raises(SkillTreeError, match=rf"skill tree {path}: entry 1 \('a'\): its parents form a cycle"):
        read_tree_file(path)


class ChildFirst(Component):
    """An environment whose setup adds a subskill before its parent."""

    kind = "environment"
    name = "child-first"

    def setup(self) -> None:
        self.skills = SkillTree("child-first")
        self.skills.add("add", "a + b", parent="additive")


def test_a_bad_tree_in_setup_is_not_blamed_on_the_options():
    with pytest.raises(SkillTreeError) as caught:
        build("environment", "child-first", ChildFirst, {})
    message = str(caught.value)
    assert message.startswith("skill tree 'child-first': skill 'add': unknown parent 'additive'")
    assert "SkillTree.from_entries" in message and "option" not in message
    tree = SkillTree("t")
    with pytest.raises(SkillTreeError, match=r"^skill tree 't': skill 'root': the name 'root' is reserved"):
        tree.add("root")


# -- 2. the embedded student's limits, checked before the first evaluation ----------------------
def times_rows(n: int, sign: str) -> list[dict]:
    return [{"prompt": f"{a} {sign} {b} =", "answer": str(a * b)} for a in range(2, 2 + n) for b in range(2, 6)]


def test_the_limits_are_the_shipped_tokenizer_and_config():
    from teachloop.students.checkpoints import EMBEDDED_BASE
    from teachloop.students.tiny import CHARACTERS, MAX_POSITIONS, character_limits

    limits = character_limits(EMBEDDED_BASE)
    vocab = json.loads((EMBEDDED_BASE / "tokenizer.json").read_text())["model"]["vocab"]
    assert limits is not None and limits.characters == set(CHARACTERS) and len(vocab) == 99
    assert limits.positions == MAX_POSITIONS == 64 and len(CHARACTERS) == 96
    assert limits.unreadable("3 × 4 é ×") == ["×", "é"] and limits.unreadable("abc\n") == []


def test_run_refuses_a_task_the_embedded_student_cannot_read(tmp_path):
    rows = write_jsonl(tmp_path / "times.jsonl", times_rows(6, "×"))
    out = teachloop(
        "run", "--env", "jsonl", "--env-option", f"path={rows}", "--policy", "none", "--iterations", "1",
        "--budget", "20", "--epochs", "1", "--out", str(tmp_path / "runs"),
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: environment 'jsonl': "), out.stderr
    assert re.search(
        r"(\d+) of \1 eval items are outside its limits \(\1 with characters it lacks: '×' \(U\+00D7\)", lines[0]
    )
    assert "× 2 =" in lines[0]
    assert "--student-model" in lines[0] and "real-models.md" in lines[0]
    assert not (tmp_path / "runs").exists()  # refused before the run folder, let alone an evaluation


def test_a_few_unreadable_items_warn_and_a_real_student_is_not_checked(tmp_path, caplog):
    from teachloop.environments import get_environment
    from teachloop.runs.loop.checks import check_models, check_student_can_read

    rows = times_rows(10, "*") + [{"prompt": "2 × 3 =", "answer": "6"}]  # 1 of 41
    path = write_jsonl(tmp_path / "mostly.jsonl", rows)
    options = {"path": str(path), "eval_fraction": 0.5}
    config = RunConfig(environment="jsonl", environment_options=options, policy="none")
    env = get_environment("jsonl", **options)
    with caplog.at_level(logging.WARNING, logger="teachloop.runs.loop.checks"):
        check_student_can_read(config, env)
        check_models(config)  # what a run calls before its folder is made: the same warning, no error
    warned = [r.getMessage() for r in caplog.records]
    assert warned and "1 of 20" in warned[0] and "'×'" in warned[0] and "--student-model" in warned[0]

    long_rows = [{"prompt": "x" * 70 + f" {i}", "answer": "y"} for i in range(10)]
    long_path = write_jsonl(tmp_path / "long.jsonl", long_rows)
    long_options = {"path": str(long_path), "eval_fraction": 0.5}
    long_config = RunConfig(environment="jsonl", environment_options=long_options, policy="none")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="teachloop.runs.loop.checks"):
        check_models(long_config)  # too long for its positions: it still runs (a smoke test), with a warning
    assert "longer than its 64 positions" in caplog.records[0].getMessage()

    caplog.clear()
    check_student_can_read(config.model_copy(update={"student_model": "HuggingFaceTB/SmolLM2-135M-Instruct"}), env)
    assert not caplog.records  # a real tokenizer reads any character


# -- 3. a pool-only policy drawing far more than the pool holds --------------------------------
def test_a_pool_drawn_many_times_over_is_a_warning(tmp_path, caplog):
    from teachloop.runs.loop.assemble import assemble_run

    train = write_jsonl(tmp_path / "train.jsonl", [{"prompt": f"copy {i}\n", "answer": str(i)} for i in range(24)])
    evals = write_jsonl(tmp_path / "eval.jsonl", [{"prompt": f"copy {i}\n", "answer": str(i)} for i in range(50, 60)])
    options = {"train_file": str(train), "eval_file": str(evals)}
    config = RunConfig(environment="jsonl", environment_options=options, policy="none", budget=600)
    with caplog.at_level(logging.WARNING, logger="teachloop.runs.loop.checks"):
        assemble_run(config, models=False)
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "600 examples per iteration from the 24-row seed pool" in warned[0]
    assert "about 25 copies of each row" in warned[0] and "lower --budget" in warned[0]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="teachloop.runs.loop.checks"):
        assemble_run(config.model_copy(update={"budget": 24}), models=False)
    assert not caplog.records


# -- 4. a JSON Lines export loads with its column types, as its card says -----------------------
def test_jsonl_export_loads_typed_as_its_card_documents(tmp_path):
    import yaml

    from teachloop.runs.export.card import COLUMNS, hub_metadata, loading_code
    from teachloop.runs.export.dataset import build_dataset, write_dataset

    def row(i: int, rejected: str | None = None, skill: str | None = None) -> dict:
        return {
            "id": f"x{i}", "prompt": "p", "answer": "a", "rejected": rejected, "skills": ["s"],
            "source": "generated", "iteration": i, "run": "r", "environment": "e", "policy": "p", "seed": 0,
            "lineage_iteration": i, "lineage_skill": skill, "lineage_policy": "p", "lineage_teacher": "t",
            "lineage_parent_id": None, "meta": "{}",
        }  # fmt: skip

    # iter_0: no preference pair, no asked-for skill (all null); iter_1 has both; iter_2 is empty
    splits = {"iter_0": [row(0), row(0)], "iter_1": [row(1, "bad", "s"), row(1)], "iter_2": []}
    out = tmp_path / "export"
    out.mkdir()
    write_dataset(build_dataset(splits), out, "jsonl")
    counts = {name: len(rows) for name, rows in splits.items()}
    meta = hub_metadata("run `r`", counts, "jsonl")
    (out / "README.md").write_text("---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n# data\n")

    code = loading_code("jsonl", counts, folder=str(out))
    assert "load_dataset('json'" not in "\n".join(line for line in code if not line.startswith("#"))
    scope: dict = {}
    exec("\n".join(code), scope)  # noqa: S102  (the card's loading section, as a user runs it)
    data = scope["data"]
    assert sorted(data) == ["iter_0", "iter_1"]  # the empty split is not listed for loading
    for split in data.values():
        for column, (kind, _) in COLUMNS.items():
            feature = split.features[column]
            found = f"list<{feature.feature.dtype}>" if kind == "list<string>" else str(feature.dtype)
            assert found == kind, column
    assert data["iter_0"]["rejected"] == [None, None] and data["iter_1"]["rejected"] == ["bad", None]
    assert data["iter_1"]["lineage_skill"] == ["s", None] and data["iter_1"]["iteration"] == [1, 1]


# -- 5. a one-seed bench: no "± 0.0", and a caveat line -----------------------------------------
def test_one_seed_leaderboard_has_no_zero_spread_and_a_caveat_line(tmp_path):
    from teachloop.runs.bench.config import BenchConfig
    from teachloop.runs.reporting.leaderboard import BenchResults, LeaderRow, MeanStd, rich_leaderboard

    assert MeanStd.of([0.5]).show() == "0.500 (n=1)" and "±" not in MeanStd.of([0.25]).show(scale=100, signed=True)
    assert MeanStd.of([0.5, 0.7]).show() == "0.600 ± 0.141" and MeanStd.of([]).show() == "—"

    def row(policy: str, gain: float) -> LeaderRow:
        figure = MeanStd.of([gain]).model_copy(update={"lo": gain - 0.1, "hi": gain + 0.1})
        return LeaderRow(
            environment="skillworld", policy=policy, teacher="none", seeds=[0], weak_skills=["max"],
            final_accuracy=figure, auc=figure, weak_gain=figure, examples_trained=40, examples_generated=40,
            teacher_tokens=0, wall_seconds=1,
        )  # fmt: skip

    bench = BenchConfig(policies=["uniform", "stat-syn"], seeds=[0], budget=40, iterations=1)
    results = BenchResults(
        bench=bench, bench_dir=tmp_path, records={}, missing=[], rows=[row("stat-syn", 0.3), row("uniform", 0.1)]
    )
    caption = str(rich_leaderboard(results).caption)
    caveat = caption.splitlines()[-1]
    assert caveat.startswith("caveat: one seed (every row) cannot separate policies")
    assert "resamples the eval items of that one run only, not seeds" in caveat and "±" not in caption
