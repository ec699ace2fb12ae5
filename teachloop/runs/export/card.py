"""The dataset card (README.md) `teachloop export` writes beside the data: hub metadata
(the splits' files and column types), how the data was made (policy, teacher, yields,
accuracy per iteration, the weak-skill gain), the redacted configuration, the columns and
how to load them. `RunData` and `Source` are what a card is written from; `teachloop.runs.export.dataset`
reads them from run folders and imports this module, never the other way round."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from teachloop.io import redact_secrets
from teachloop.runs.loop.metrics import MetricsRecord, load_tree
from teachloop.types import DataYield

if TYPE_CHECKING:
    from teachloop.runs.config import RunConfig
    from teachloop.runs.loop.store import RunStore

# column -> (arrow type, what it holds); the card's column table is written from it
COLUMNS: dict[str, tuple[str, str]] = {
    "id": ("string", "content id of (prompt, answer)"),
    "prompt": ("string", "the task as the student sees it"),
    "answer": ("string", "the reference (chosen) answer the student was trained on"),
    "rejected": ("string", "a dispreferred answer: the row is a preference pair (DPO); null for SFT rows"),
    "skills": ("list<string>", "the skills the example exercises"),
    "source": ("string", "generated (engine), seed (drawn from the seed pool) or eval"),
    "iteration": ("int32", "the iteration whose generate phase kept it (it trained student iteration+1)"),
    "run": ("string", "the run folder's name"),
    "environment": ("string", "the run's environment"),
    "policy": ("string", "the run's data-generation policy"),
    "seed": ("int32", "the run's seed"),
    "lineage_iteration": ("int32", "lineage: the iteration it was made for"),
    "lineage_skill": ("string", "lineage: the skill it was asked for (null: any skill)"),
    "lineage_policy": ("string", "lineage: the policy that asked for it"),
    "lineage_teacher": ("string", "lineage: who wrote it (an LLM teacher, programmatic, pool)"),
    "lineage_parent_id": ("string", "lineage: the example it was derived from (a pool item, a failed eval item)"),
    "meta": ("string", "the example's free-form metadata, as JSON"),
}


# -- what a card is written from (teachloop.runs.export.dataset reads it from the run folders) ------------
@dataclass
class RunData:
    """What one run contributes: its rows per exported iteration and what the card reports."""

    store: RunStore
    config: RunConfig
    teacher: str
    rows: dict[int, list[dict[str, Any]]]  # iteration -> rows, published data phases only
    yields: dict[int, DataYield]
    teacher_tokens: dict[int, int]
    unpublished: list[int]  # iterations whose data phase exists but never finished
    records: list[MetricsRecord]

    @property
    def name(self) -> str:
        return self.store.root.name

    @property
    def examples(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


@dataclass
class Source:
    """What `export` was pointed at: one run, or a bench folder's runs."""

    path: Path
    runs: list[RunData]
    bench: dict[str, Any] | None = None  # bench.yaml, secrets redacted; None for a run
    skipped: list[str] = field(default_factory=list)  # bench cells left out: not finished

    @property
    def is_bench(self) -> bool:
        return self.bench is not None

    @property
    def title(self) -> str:
        return f"{'bench' if self.is_bench else 'run'} `{self.path.name}`"


def data_file(split: str, fmt: str) -> str:
    """Where a split lies inside OUT, as the card's `configs` (and the hub) name it."""
    return {"parquet": f"{split}.parquet", "jsonl": f"{split}.jsonl", "hf": f"{split}/*.arrow"}[fmt]


# -- the dataset card -----------------------------------------------------------------------------
def _md_row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def _md_table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return [_md_row(head), "|" + "---|" * len(head), *(_md_row(r) for r in rows)]


def _yield_cell(data_yield: DataYield | None) -> str:
    return "–" if data_yield is None or data_yield.ratio is None else f"{data_yield.ratio:.0%}"


def _rejected_cell(data_yield: DataYield | None) -> str:
    if data_yield is None or not data_yield.rejected:
        return "–"
    return ", ".join(f"{reason} {count}" for reason, count in data_yield.rejected.items())


def _config_yaml(run: RunData) -> str:
    # `out` is where the run happened to sit on its machine, not how the data was made
    config = redact_secrets(run.config.model_dump(mode="json", exclude={"out"}))
    return yaml.safe_dump(config, sort_keys=False).rstrip()


def _accuracy(records: Sequence[MetricsRecord], i: int) -> str:
    return f"{records[i].accuracy:.3f}" if i < len(records) else "–"


def _run_section(run: RunData) -> list[str]:
    from teachloop.runs.reporting.report import WEAK_THRESHOLD, markdown_table, mean_accuracy, weak_gain, weak_skills

    config, records = run.config, run.records
    lines = [
        f"- environment: `{config.environment}`, policy: `{config.policy}`, teacher: `{run.teacher}`, "
        f"engine: `{config.engine}`",
        f"- student: `{config.student_model}` ({config.student} training, {config.data} data), budget "
        f"{config.budget} examples x {config.iterations} iterations, seed {config.seed}",
        f"- status: {'finished' if run.store.is_finished() else 'unfinished'}; {run.examples} examples exported",
    ]
    if run.unpublished:
        left = ", ".join(f"iter_{i}" for i in run.unpublished)
        lines.append(f"- not exported: the generate phase of {left} never finished (no done.json)")
    lines += [
        "",
        "Per iteration: the generate phase's yield (examples kept / asked) and the student's eval accuracy "
        "before and after training on that iteration's data.",
        "",
    ]
    rows = []
    for i, examples in run.rows.items():
        data_yield = run.yields.get(i)
        asked = data_yield.asked if data_yield else "–"
        rows.append(
            [
                i, len(examples), asked, _yield_cell(data_yield), _rejected_cell(data_yield),
                run.teacher_tokens.get(i, 0), _accuracy(records, i), _accuracy(records, i + 1),
            ]
        )  # fmt: skip
    head = ["iteration", "examples", "asked", "yield", "rejected", "teacher tokens", "accuracy before", "after"]
    lines += _md_table(head, rows)
    weak = weak_skills(records)
    if records:
        lines += ["", "Accuracy per iteration and skill (`*`: weak at iteration 0):", ""]
        lines.append(markdown_table(records, load_tree(run.store)))
    if weak and len(records) > 1:
        lines += [
            "",
            f"Weak skills at iteration 0 (accuracy < {WEAK_THRESHOLD}): {', '.join(weak)}; mean accuracy "
            f"{mean_accuracy(records[0], weak):.3f} -> {mean_accuracy(records[-1], weak):.3f} "
            f"(weak-skill gain {weak_gain(records) * 100:+.1f} points).",
        ]
    return lines


def _bench_section(source: Source) -> list[str]:
    from teachloop.runs.reporting.report import weak_gain

    rows = []
    for run in source.runs:
        records = run.records
        accuracy = f"{records[0].accuracy:.3f} -> {records[-1].accuracy:.3f}" if records else "–"
        yields = ", ".join(_yield_cell(run.yields.get(i)) for i in run.rows)
        gain = f"{weak_gain(records) * 100:+.1f}" if records else "–"
        rows.append(
            [run.name, run.config.environment, run.config.policy, run.config.seed, run.teacher, run.examples,
             yields, accuracy, gain]
        )  # fmt: skip
    head = ["run", "environment", "policy", "seed", "teacher", "examples", "yield per iteration", "accuracy",
            "weak-skill gain (points)"]  # fmt: skip
    lines = ["One row per finished run; `accuracy`: first -> last evaluation.", "", *_md_table(head, rows)]
    if source.skipped:
        lines += ["", f"Not exported (unfinished runs): {', '.join(source.skipped)}."]
    return lines


def loadable_splits(splits: dict[str, int], fmt: str) -> list[str]:
    """The splits the card lists for loading: all of them, except empty ones in JSON Lines (an
    empty .jsonl file holds no rows and no types: `datasets` refuses to load it)."""
    return [name for name, n in splits.items() if n or fmt != "jsonl"]


def hub_metadata(title: str, splits: dict[str, int], fmt: str) -> dict[str, Any]:
    """The card's YAML front matter: the splits' files and every column's type. `load_dataset`
    on the export folder (and the hub) read the types from here, so JSON Lines, which holds
    no types of its own, loads as typed as parquet: a column that is null throughout a split
    stays a string, `iteration` an int32, and splits that differ in which columns are null
    load together (inferring the types from the first file instead fails on them)."""
    return {
        "pretty_name": f"teachloop {title.replace('`', '')}",
        "tags": ["teachloop", "synthetic"],
        "dataset_info": {
            "features": [
                {"name": c, "list": "string"} if kind == "list<string>" else {"name": c, "dtype": kind}
                for c, (kind, _) in COLUMNS.items()
            ]
        },
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": name, "path": data_file(name, fmt)} for name in loadable_splits(splits, fmt)],
            }
        ],
    }


def dataset_card(source: Source, splits: dict[str, int], fmt: str) -> str:
    """README.md: hub metadata (the splits' files), then how the data was made and what it did."""
    meta = hub_metadata(source.title, splits, fmt)
    total = sum(splits.values())
    what = "every finished run of the bench" if source.is_bench else "the run"
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False).rstrip(),
        "---",
        "",
        f"# teachloop data: {source.title}",
        "",
        f"The training examples that {what} generated with teachloop (closed-loop teacher-student data "
        "generation), one row per example its generate phases kept, each with its lineage. "
        f"{total} examples in {len(splits)} split(s), written as `{fmt}`.",
        "",
        *_md_table(["split", "rows"], [[name, n] for name, n in splits.items()]),
        "",
        "## How it was made",
        "",
    ]
    if source.is_bench:
        lines += _bench_section(source)
        lines += ["", "## Configuration", "", "The bench file (`bench.yaml`; secrets are never stored):", ""]
        lines += ["```yaml", yaml.safe_dump(source.bench, sort_keys=False).rstrip(), "```"]
    else:
        run = source.runs[0]
        lines += _run_section(run)
        lines += ["", "## Configuration", "", "The run's `config.yaml` (secrets are never stored):", ""]
        lines += ["```yaml", _config_yaml(run), "```"]
    lines += ["", "## Columns", ""]
    lines += _md_table(["column", "type", "meaning"], [[f"`{c}`", kind, text] for c, (kind, text) in COLUMNS.items()])
    lines += ["", "## Loading", "", "```python", *loading_code(fmt, splits), "```", ""]
    empty = [name for name in splits if name not in loadable_splits(splits, fmt)]
    if empty:
        lines += [f"Empty, so not listed for loading (an empty JSON Lines file has no rows): {', '.join(empty)}.", ""]
    return "\n".join(lines)


def loading_code(fmt: str, splits: dict[str, int], folder: str = "<this folder>") -> list[str]:
    """How the card says to load the export: `load_from_disk` for `hf`; `load_dataset` on the
    folder for parquet and JSON Lines, which reads this card's column types (JSON Lines has
    none of its own: `load_dataset('json', data_files=...)` guesses them from the first file,
    making an all-null column `null` and failing on a later split that has values)."""
    if fmt == "hf":
        return ["from datasets import load_from_disk", f"data = load_from_disk({folder!r})"]
    lines = ["from datasets import load_dataset", f"data = load_dataset({folder!r})  # the column types of this card"]
    if fmt == "jsonl":
        files = ", ".join(f"{name!r}: '{folder}/{data_file(name, fmt)}'" for name in loadable_splits(splits, fmt))
        lines += [
            "# the files one by one, typed: give the features",
            "# from teachloop.runs.export.dataset import features",
            f"# data = load_dataset('json', data_files={{{files}}}, features=features())",
        ]
    return lines
