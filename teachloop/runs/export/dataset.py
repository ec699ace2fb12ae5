"""`teachloop export`: the data a run (or every finished run of a bench) generated, as a
Hugging Face `datasets.DatasetDict` with each example's lineage, plus a dataset card.

Only published phases are exported: an `iter_<i>/data` folder without done.json (a phase a
run stopped on purpose, or one a kill interrupted) is left out and named in the card, and
every run is checked against the digests its phases recorded before anything is read.

Splits: one per iteration (`iter_0`, `iter_1`, ...) for a run, one per run for a bench
(its name with every non-word character made `_`), or a single `train` split with
`merged`. Every split has the same explicit features (`FEATURE_TYPES`), so a column that
is empty in one split (`rejected`, a lineage field) keeps its type in parquet.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from teachloop.environments.rows import quiet_datasets
from teachloop.errors import ConfigError, DiskFull, PluginError, TeachloopError
from teachloop.io import atomic_write_text, full_disk, make_temp_dir, read_text, redact_secrets
from teachloop.runs.config import RunConfig
from teachloop.runs.export.card import COLUMNS, RunData, Source, data_file, dataset_card
from teachloop.runs.loop.artifacts import DataFiles
from teachloop.runs.loop.guard import BENCH_FILE, EXPORT_MARKER, check_output_folder
from teachloop.runs.loop.metrics import compute_metrics
from teachloop.runs.loop.store import MARKER, PHASES, RunStore
from teachloop.types import DataYield, Example

if TYPE_CHECKING:
    from datasets import DatasetDict, Features

FORMATS = ("hf", "parquet", "jsonl")
CARD = "README.md"
MERGED_SPLIT = "train"


def features() -> Features:
    from datasets import Features, List, Value

    return Features(
        {name: List(Value("string")) if kind == "list<string>" else Value(kind) for name, (kind, _) in COLUMNS.items()}
    )


# -- reading runs -----------------------------------------------------------------------------
def example_row(example: Example, iteration: int, run: str, config: RunConfig) -> dict[str, Any]:
    lineage = example.lineage
    return {
        "id": example.id,
        "prompt": example.prompt,
        "answer": example.answer,
        "rejected": example.rejected,
        "skills": list(example.skills),
        "source": example.source,
        "iteration": iteration,
        "run": run,
        "environment": config.environment,
        "policy": config.policy,
        "seed": config.seed,
        "lineage_iteration": lineage.iteration if lineage else None,
        "lineage_skill": lineage.skill if lineage else None,
        "lineage_policy": lineage.policy if lineage else None,
        "lineage_teacher": lineage.teacher if lineage else None,
        "lineage_parent_id": lineage.parent_id if lineage else None,
        "meta": json.dumps(example.meta, sort_keys=True),
    }


def _teacher(config: RunConfig) -> str:
    from teachloop.runs.reporting.leaderboard import teacher_label

    try:
        return teacher_label(config)
    except PluginError:  # a plug-in policy not installed here: its teacher use is unknown
        return "none" if config.teacher is None else config.teacher.spec


def _phase_tokens(store: RunStore, iteration: int) -> int:
    total = 0
    for phase in PHASES:
        record = store.phase_record(iteration, phase)
        ledger = record.info.get("teacher", {}) if record else {}
        total += ledger.get("prompt_tokens", 0) + ledger.get("completion_tokens", 0)
    return total


def _iterations(store: RunStore) -> list[int]:
    found = (re.fullmatch(r"iter_(\d+)", p.name) for p in store.root.iterdir() if p.is_dir())
    return sorted(int(m.group(1)) for m in found if m)


def read_run(run_dir: Path) -> RunData:
    """A run's published data phases, checked against their recorded digests."""
    store = RunStore.open(run_dir)
    store.check_integrity()
    config = store.config()
    rows: dict[int, list[dict[str, Any]]] = {}
    yields: dict[int, DataYield] = {}
    tokens: dict[int, int] = {}
    unpublished = []
    for i in _iterations(store):
        if not store.is_done(i, "data"):
            if store.phase_dir(i, "data").exists():
                unpublished.append(i)
            continue
        examples = DataFiles.read_examples(store.phase_dir(i, "data"))
        rows[i] = [example_row(ex, i, store.root.name, config) for ex in examples]
        record = store.phase_record(i, "data")
        if record is not None and "yield" in record.info:
            yields[i] = DataYield.model_validate(record.info["yield"])
        tokens[i] = _phase_tokens(store, i)
    return RunData(
        store=store,
        config=config,
        teacher=_teacher(config),
        rows=rows,
        yields=yields,
        teacher_tokens=tokens,
        unpublished=unpublished,
        records=compute_metrics(store, config.policy),
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(read_text(path)) or {}
    except yaml.YAMLError as exc:
        raise TeachloopError(f"{path} is unreadable ({' '.join(str(exc).split())}); restore it") from None
    if not isinstance(loaded, dict):
        raise TeachloopError(f"{path} must hold a mapping; restore it")
    return redact_secrets(loaded)


def read_source(path: Path) -> Source:
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{path} does not exist or is not a folder; pass a run folder or a bench folder")
    if (path / MARKER).exists():
        run = read_run(path)
        if not run.rows:
            raise TeachloopError(f"run {path} has no finished generate phase yet: there is no data to export")
        return Source(path=path, runs=[run])
    if not (path / BENCH_FILE).is_file():
        raise ConfigError(
            f"{path} is neither a run folder ({MARKER}) nor a bench folder ({BENCH_FILE}); pass a folder made by "
            "`teachloop run` or `teachloop bench`"
        )
    cells = sorted(p for p in (path / "runs").glob("*") if (p / MARKER).is_file()) if (path / "runs").is_dir() else []
    finished = [cell for cell in cells if RunStore.open(cell).is_finished()]
    skipped = [cell.name for cell in cells if cell not in finished]
    if not finished:
        raise TeachloopError(f"bench {path} has no finished run yet; run `teachloop bench` to finish it first")
    runs = [read_run(cell) for cell in finished]
    return Source(path=path, runs=runs, bench=_read_yaml(path / BENCH_FILE), skipped=skipped)


# -- the dataset --------------------------------------------------------------------------------
def split_name(text: str) -> str:
    """A split name the hub and `datasets` accept (letters, digits, `_`)."""
    return re.sub(r"\W+", "_", text).strip("_") or "run"


def split_rows(source: Source, merged: bool) -> dict[str, list[dict[str, Any]]]:
    if merged:
        return {MERGED_SPLIT: [row for run in source.runs for rows in run.rows.values() for row in rows]}
    if not source.is_bench:
        return {f"iter_{i}": rows for i, rows in source.runs[0].rows.items()}
    splits: dict[str, list[dict[str, Any]]] = {}
    for run in source.runs:
        name = split_name(run.name)
        if name in splits:
            raise TeachloopError(f"two runs of {source.path} give the split name {name!r}; export them with --merged")
        splits[name] = [row for rows in run.rows.values() for row in rows]
    return splits


def build_dataset(splits: dict[str, list[dict[str, Any]]]) -> DatasetDict:
    from datasets import Dataset, DatasetDict

    schema = features()
    # column-wise, so an empty split still gets every column with its type
    return DatasetDict(
        {
            name: Dataset.from_dict({col: [row[col] for row in rows] for col in schema}, features=schema, split=name)
            for name, rows in splits.items()
        }
    )


def write_dataset(dataset: DatasetDict, folder: Path, fmt: str) -> None:
    with quiet_datasets():
        if fmt == "hf":
            dataset.save_to_disk(str(folder))
            return
        for name, split in dataset.items():
            if fmt == "parquet":
                split.to_parquet(str(folder / data_file(name, fmt)))
            else:
                split.to_json(str(folder / data_file(name, fmt)), lines=True, force_ascii=False)


# -- the command --------------------------------------------------------------------------------
@dataclass
class ExportResult:
    out: Path
    format: str
    splits: dict[str, int]
    skipped: list[str]
    pushed: str | None = None

    def summary(self) -> str:
        counts = ", ".join(f"{name}: {n}" for name, n in self.splits.items())
        return f"exported {sum(self.splits.values())} examples ({counts}) as {self.format} to {self.out}"


def _check_out(out: Path, source: Path, overwrite: bool) -> None:
    resolved, inside = out.resolve(), source.resolve()
    if resolved == inside or resolved in inside.parents:
        raise ConfigError(f"--out {out} holds the folder being exported; choose another --out")
    check_output_folder(out, "--out", EXPORT_MARKER, overwrite)


def _publish(tmp: Path, out: Path) -> None:
    """Put the finished export in place of OUT (a kill leaves the old one or the new one)."""
    old = None
    if out.exists():
        old = make_temp_dir(out.parent, prefix=f".{out.name}.old.")
        old.rmdir()
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def push(dataset: DatasetDict, card: str, repo: str, out: Path) -> str:
    """The splits and the card to the hub dataset `repo`; the hub's login is used, never stored."""
    try:
        from huggingface_hub import DatasetCard

        dataset.push_to_hub(repo)
        hub_card = DatasetCard.load(repo, repo_type="dataset")
        hub_card.text = card.split("\n---\n", 1)[1]  # keep the metadata push_to_hub wrote: its files
        hub_card.push_to_hub(repo, repo_type="dataset")
    except Exception as exc:  # the hub client raises many kinds: offline, auth, HTTP, bad repo id
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise TeachloopError(
            f"could not push to the hub dataset {repo} ({type(exc).__name__}: {reason}); the local copy is in "
            f"{out}; check the network and your hub login (`hf auth login` or $HF_TOKEN), then push again"
        ) from None
    return f"https://huggingface.co/datasets/{repo}"


def export(
    source: Path,
    out: Path,
    fmt: str = "hf",
    merged: bool = False,
    overwrite: bool = False,
    push_to_hub: str | None = None,
) -> ExportResult:
    """Write a run's (or a bench's) generated data with lineage and its dataset card to `out`,
    then push it to the hub when `push_to_hub` names a repo."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    source, out = Path(source), Path(out)
    _check_out(out, source, overwrite)
    data = read_source(source)
    splits = split_rows(data, merged)
    dataset = build_dataset(splits)
    counts = {name: len(rows) for name, rows in splits.items()}
    card = dataset_card(data, counts, fmt)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = make_temp_dir(out.parent, prefix=f".{out.name}.")
    except OSError as exc:
        if (full := full_disk(exc)) is not None:
            raise DiskFull(out, full.quota, then="export again") from None
        raise TeachloopError(
            f"cannot write --out {out}: {exc.strerror or exc} ({exc.filename or out.parent})"
        ) from None
    try:
        write_dataset(dataset, tmp, fmt)
        atomic_write_text(tmp / CARD, card)
        atomic_write_text(tmp / EXPORT_MARKER, f"teachloop export of {source}\n")
        _publish(tmp, out)
    except Exception as exc:  # a full disk (pyarrow's and datasets' writers raise their own errors)
        full = full_disk(exc)
        if full is not None:
            raise DiskFull(out, full.quota, then="export again (nothing of it was kept)") from None
        if isinstance(exc, OSError):
            raise TeachloopError(
                f"cannot write --out {out}: {exc.strerror or exc} ({exc.filename or out.parent})"
            ) from None
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    result = ExportResult(out=out, format=fmt, splits=counts, skipped=data.skipped)
    if push_to_hub:
        result.pushed = push(dataset, card, push_to_hub, out)
    return result
