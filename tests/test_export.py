"""`teachloop export`: a run's or a bench's generated data as a Hugging Face dataset with lineage."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import teachloop

pytestmark = pytest.mark.slow

LINEAGE = ["lineage_iteration", "lineage_skill", "lineage_policy", "lineage_teacher", "lineage_parent_id"]
TINY_BENCH = {
    "environments": ["skillworld"],
    "policies": ["uniform", "error-dpo"],  # error-dpo keeps preference pairs: a `rejected` column with values
    "seeds": [0],
    "iterations": 1,
    "budget": 40,
    "run": {"train": {"epochs": 1}},
}


def run_examples(run: Path) -> dict[str, list[dict]]:
    """The examples of every published generate phase, read straight from the run folder."""
    return {
        data.parent.name: [json.loads(line) for line in (data / "examples.jsonl").read_text().splitlines()]
        for data in sorted(run.glob("iter_*/data"))
        if (data / "done.json").is_file()
    }


def card_of(out: Path) -> tuple[dict, str]:
    _, front, body = (out / "README.md").read_text().split("---\n", 2)
    return yaml.safe_load(front), body


def load(out: Path, fmt: str, splits: list[str], cache: Path):
    from datasets import load_dataset, load_from_disk

    if fmt == "hf":
        return load_from_disk(str(out))
    builder = "parquet" if fmt == "parquet" else "json"
    files = {split: str(out / f"{split}.{'parquet' if fmt == 'parquet' else 'jsonl'}") for split in splits}
    return load_dataset(builder, data_files=files, cache_dir=str(cache))


def one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]


@pytest.fixture()
def run_copy(small_run, tmp_path) -> Path:
    return Path(shutil.copytree(small_run, tmp_path / "small"))


@pytest.mark.parametrize("fmt", ["hf", "parquet", "jsonl"])
def test_export_loads_back_with_lineage_and_a_card(run_copy, tmp_path, fmt):
    out = tmp_path / "export"
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier export")
    (out / ".teachloop-export").write_text("")  # the marker an earlier export left
    done = teachloop("export", str(run_copy), "--out", str(out), "--format", fmt, "--overwrite")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (out / "stale.txt").exists()  # --overwrite replaced the folder

    expected = run_examples(run_copy)
    assert list(expected) == ["iter_0", "iter_1"]
    data = load(out, fmt, list(expected), tmp_path / "cache")
    assert sorted(data) == ["iter_0", "iter_1"]
    for split, examples in expected.items():
        rows = data[split]
        assert rows.num_rows == len(examples) > 0
        assert rows["prompt"] == [ex["prompt"] for ex in examples]
        assert rows["answer"] == [ex["answer"] for ex in examples]
        assert rows["skills"] == [ex["skills"] for ex in examples]
        iteration = int(split.removeprefix("iter_"))
        assert set(rows["iteration"]) == {iteration} and set(rows["run"]) == {"small"}
        assert set(rows["lineage_iteration"]) == {iteration}
        assert set(rows["lineage_policy"]) == {"stat-syn"} and set(rows["lineage_teacher"]) == {"programmatic"}
        assert set(rows["lineage_skill"]) == {ex["lineage"]["skill"] for ex in examples} != {None}
        assert set(LINEAGE) | {"rejected", "source", "policy", "seed"} <= set(rows.column_names)
    if fmt != "jsonl":  # typed formats keep the all-null columns typed
        assert str(data["iter_0"].features["rejected"].dtype) == "string"

    front, body = card_of(out)
    files = front["configs"][0]["data_files"]
    assert [f["split"] for f in files] == ["iter_0", "iter_1"]
    assert {f["name"] for f in front["dataset_info"]["features"]} >= set(LINEAGE)
    assert "policy: `stat-syn`" in body and "teacher: `none`" in body
    for i in (0, 1):
        info = json.loads((run_copy / f"iter_{i}" / "data" / "done.json").read_text())["info"]["yield"]
        row = next(line for line in body.splitlines() if line.startswith(f"| {i} | {info['accepted']} |"))
        assert f"| {info['asked']} | {info['ratio']:.0%} |" in row  # the iteration's yield
    assert "weak-skill gain" in body and "seed: 7" in body  # results and the run's configuration


def test_merged_export_leaves_out_an_unpublished_phase(run_copy, tmp_path):
    data = run_copy / "iter_1" / "data"
    (data / "done.json").rename(data / "failed.json")  # as a run leaves a phase it stopped on purpose
    out = tmp_path / "merged"
    done = teachloop("export", str(run_copy), "--out", str(out), "--format", "parquet", "--merged")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "train: " in done.stdout

    from datasets import load_dataset

    rows = load_dataset("parquet", data_files={"train": str(out / "train.parquet")}, cache_dir=str(tmp_path / "c"))
    assert rows["train"].num_rows == len(run_examples(run_copy)["iter_0"])
    assert set(rows["train"]["iteration"]) == {0}
    assert "iter_1 never finished" in card_of(out)[1]


def test_push_to_hub_offline_fails_after_the_local_copy_and_stores_no_token(run_copy, tmp_path):
    out = tmp_path / "pushed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_TOKEN": "hf_sentinel_never_written"}
    done = subprocess.run(
        ["teachloop", "export", str(run_copy), "--out", str(out), "--push-to-hub", "someone/teachloop-data"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    line = one_line_error(done)
    assert "could not push to the hub dataset someone/teachloop-data" in line and str(out) in line

    from datasets import load_from_disk

    assert load_from_disk(str(out))["iter_0"].num_rows > 0
    assert not any("hf_sentinel" in p.read_bytes().decode(errors="ignore") for p in out.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not a run", "is neither a run folder (run.json) nor a bench folder (bench.yaml)"),
        ("missing", "does not exist or is not a folder"),
        ("out not empty", "exists and is not empty; choose another folder or pass --overwrite"),
        ("out is the run", "holds the folder being exported"),
        ("bad format", "--format 'csv' is not one of hf, parquet, jsonl"),
        ("damaged", "was changed after its phase finished"),
    ],
)
def test_bad_input_one_line_error(run_copy, tmp_path, case, message):
    source, out, fmt = run_copy, tmp_path / "out", "hf"
    if case == "not a run":
        source = tmp_path / "plain"
        source.mkdir()
    elif case == "missing":
        source = tmp_path / "nowhere"
    elif case == "out not empty":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    elif case == "out is the run":
        out = tmp_path
    elif case == "bad format":
        fmt = "csv"
    elif case == "damaged":
        with (run_copy / "iter_0" / "data" / "examples.jsonl").open("a") as handle:
            handle.write(json.dumps({"prompt": "injected", "answer": "x"}) + "\n")
    done = teachloop("export", str(source), "--out", str(out), "--format", fmt)
    assert message in one_line_error(done)
    if case == "out not empty":
        assert [p.name for p in out.iterdir()] == ["keep.txt"]
    elif case != "out is the run":
        assert not out.exists()  # nothing written for a refused export


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export-bench")
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY_BENCH))
    done = teachloop("bench", str(root / "tiny.yaml"), "--out", str(root / "bench"))
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "bench"


def test_bench_export_per_run_and_merged_skips_unfinished_runs(tiny_bench, tmp_path):
    bench = Path(shutil.copytree(tiny_bench, tmp_path / "bench"))
    runs = {run.name: run_examples(run)["iter_0"] for run in sorted((bench / "runs").iterdir())}
    assert sorted(runs) == ["skillworld-error-dpo-s0", "skillworld-uniform-s0"]

    out = tmp_path / "per-run"
    done = teachloop("export", str(bench), "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    from datasets import load_from_disk

    data = load_from_disk(str(out))
    assert sorted(data) == ["skillworld_error_dpo_s0", "skillworld_uniform_s0"]
    dpo, uniform = data["skillworld_error_dpo_s0"], data["skillworld_uniform_s0"]
    assert dpo.num_rows == len(runs["skillworld-error-dpo-s0"])
    assert uniform.num_rows == len(runs["skillworld-uniform-s0"])
    assert set(dpo["policy"]) == {"error-dpo"} and set(dpo["run"]) == {"skillworld-error-dpo-s0"}
    assert set(dpo["seed"]) == {0} and set(uniform["lineage_policy"]) == {"uniform"}
    assert all(dpo["rejected"]) and dpo["rejected"] == [ex["rejected"] for ex in runs["skillworld-error-dpo-s0"]]
    assert set(uniform["rejected"]) == {None}
    body = card_of(out)[1]
    assert "| skillworld-uniform-s0 | skillworld | uniform | 0 | none |" in body and "policies:" in body

    # a run that is not finished is left out, and said so
    marker = bench / "runs" / "skillworld-uniform-s0" / "run.json"
    meta = json.loads(marker.read_text())
    del meta["finished"]
    marker.write_text(json.dumps(meta))
    merged = tmp_path / "merged"
    done = teachloop("export", str(bench), "--out", str(merged), "--format", "jsonl", "--merged")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "not exported (unfinished runs): skillworld-uniform-s0" in done.stdout
    rows = [json.loads(line) for line in (merged / "train.jsonl").read_text().splitlines()]
    assert len(rows) == len(runs["skillworld-error-dpo-s0"]) and {r["run"] for r in rows} == {"skillworld-error-dpo-s0"}
    assert "Not exported (unfinished runs): skillworld-uniform-s0" in card_of(merged)[1]


def test_export_help_names_formats_and_options():
    out = teachloop("export", "--help")
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    for option in ("--out", "--format", "--merged", "--overwrite", "--push-to-hub REPO", "hf", "parquet", "jsonl"):
        assert option in text
