"""Bad input, as a demanding user gives it: every case ends in one `error:` line with exit
code 2, no traceback, and a refusal changes nothing on disk (every file under the test's
folder, run folders included, has the same content afterwards).

One table: the input (a command line, and what is done to the files first), the first line
expected, and the files that must stay as they were."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_fork import run_teachloop

from teachloop.runs.loop.store import RunStore

NOT_UTF8 = b"\xff\xfe not text \x80\n"


def teachloop(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_teachloop(list(args), cwd=cwd)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root: relative path -> sha256 of its content."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


@dataclass
class Case:
    id: str
    args: list[str]  # "{run}" is the copy of a finished run, "{other}" a second one, "{tmp}" the test folder
    first_line: str  # what the one error line must contain
    setup: Callable[[Path], None] | None = None  # given the test folder (the run copy is at tmp/run)
    runs: int = 0  # finished runs copied in first: 1 -> tmp/run, 2 -> also tmp/other
    read_only: bool = False  # the run folder is made read-only (immutable for root) first


def corrupt(relative: str) -> Callable[[Path], None]:
    return lambda tmp: write(tmp / "run" / relative, NOT_UTF8)


def config(text: str | bytes, name: str = "c.yaml") -> Callable[[Path], None]:
    return lambda tmp: write(tmp / name, text)


def labelled_jsonl(content: str | bytes) -> Callable[[Path], None]:
    return lambda tmp: write(tmp / "data.jsonl", content)


CASES = [
    # names and values
    Case(
        "unknown-policy", ["run", "--policy", "nope"], "error: unknown policy 'nope' (did you mean 'none'?); available:"
    ),
    Case("unknown-env", ["run", "--env", "atlantis"], "error: unknown environment 'atlantis'; available: code, jsonl"),
    Case(  # 0 is an evaluate-only run (tests/test_evaluate_only.py)
        "iterations-negative",
        ["run", "--iterations", "-1"],
        "error: invalid config (command line): iterations: Input should be",
    ),
    Case("bad-data-switch", ["run", "--data", "sometimes"], "error: invalid config (command line): data: Input should be"),
    Case("negative-budget", ["run", "--budget", "-5"], "error: invalid config (command line): budget: Input should be"),
    Case(  # checked before the teacher is asked anything (the engine itself is built with it, later)
        "bad-engine-option-with-a-teacher",
        ["run", "--engine", "llm", "--engine-option", "strategy=sideways", "--teacher", "openai:m"],
        "error: engine 'llm': strategy: Input should be 'new_question', 'rephrase' or 'answer_augmentation'",
    ),
    Case(
        "file-and-flag-both-wrong",
        ["run", "-c", "c.yaml", "--budget", "-5"],
        "error: invalid config (c.yaml and the command line): budget: Input should be greater than or equal to 1; "
        "train.lora.r",
        setup=config("train: {lora: {r: 0}}\n"),
    ),
    Case("raydata-without-lora", ["run", "--eval-backend", "raydata"], "error: eval_backend raydata serves LoRA"),
    Case(
        "budget-not-a-number",
        ["run", "--budget", "abc"],
        "error: Invalid value for '--budget': Input should be a valid integer",
    ),
    Case("bad-teacher-spec", ["run", "--teacher", "vllm"], "error: --teacher must look like '<backend>:<model>'"),
    Case(  # refused as given, not after a connection attempt's retries
        "base-url-not-a-url",
        ["run", "--teacher", "openai:m", "--teacher-base-url", "not-a-url"],
        "error: invalid config (command line): teacher: teacher backend 'openai': base_url: not a URL",
    ),
    Case(
        "teacher-setting-without-a-teacher",
        ["run", "--teacher-concurrency", "0"],
        "error: --teacher is missing: teacher settings are given on the command line (teacher.options.concurrency)",
    ),
    Case(
        "teacher-option-without-a-teacher",
        ["run", "--teacher-option", "base_url=http://127.0.0.1:9/v1"],
        "error: --teacher is missing",
    ),
    Case("blank-name", ["run", "--name", "   "], "error: invalid config (command line): name: must be a plain folder"),
    Case("name-with-a-newline", ["run", "--name", "a\nb"], "name: must be a plain folder name"),
    Case(
        "negative-items",
        ["environments", "check", "skillworld", "--items", "-1"],
        "error: Invalid value for '--items'",
    ),
    Case("bad-env-option", ["run", "--env-option", "nonsense"], "error: expected KEY=VALUE, got 'nonsense'"),
    # flags generated from the config models: the same validation, the same one line, as a file
    Case(
        "dotted-flag-out-of-range",
        ["run", "--train.lora.r", "0"],
        "error: invalid config (command line): train.lora.r: Input should be greater than or equal to 1",
    ),
    Case(
        "same-value-in-a-file",
        ["run", "-c", "c.yaml"],
        "error: invalid config (c.yaml): train.lora.r: Input should be greater than or equal to 1",
        setup=config("train: {lora: {r: 0}}\n"),
    ),
    Case(
        "option-another-backend-has",
        ["run", "--teacher", "vllm:m", "--teacher-base-url", "http://127.0.0.1:9/v1"],
        "error: invalid config (command line): teacher: teacher backend 'vllm': unknown option 'base_url'; its "
        "options: vllm_options",
    ),
    Case(
        "misspelt-backend-option",
        ["run", "--teacher", "openai:m", "--teacher-option", "concurency=4"],
        "unknown option 'concurency' (did you mean 'concurrency'?)",
    ),
    Case(
        "misspelt-flat-teacher-setting",
        ["run", "-c", "c.yaml"],
        "teacher backend 'openai': unknown option 'base_ulr' (did you mean 'base_url'?)",
        setup=config("teacher: {backend: openai, model: m, base_ulr: http://x}\n"),
    ),
    # config files
    Case("missing-config", ["run", "--config", "missing.yaml"], "error: config file missing.yaml does not exist"),
    Case("empty-config", ["run", "-c", "c.yaml"], "error: config file c.yaml is empty", setup=config("")),
    Case(
        "comments-only-config",
        ["run", "-c", "c.yaml"],
        "error: config file c.yaml holds no options",
        setup=config("# x\n"),
    ),
    Case(
        "non-utf8-config",
        ["run", "-c", "c.yaml"],
        "error: config file c.yaml is not UTF-8 text",
        setup=config(NOT_UTF8),
    ),
    Case(
        "config-is-a-folder",
        ["run", "-c", "cfgdir"],
        "error: config file cfgdir is a folder",
        setup=lambda t: (t / "cfgdir").mkdir(),
    ),
    Case(
        "train-scalar-and-epochs",
        ["run", "-c", "c.yaml", "--epochs", "2"],
        "train must be a mapping of options, not 5",
        setup=config("train: 5\n"),
    ),
    Case(
        "policy-options-scalar",
        ["run", "-c", "c.yaml", "--policy-option", "floor=0.1"],
        "policy_options must be a mapping of options, not 3",
        setup=config("policy_options: 3\n"),
    ),  # fmt: skip
    Case(
        "teacher-scalar-and-url",
        ["run", "-c", "c.yaml", "--teacher-base-url", "http://127.0.0.1:9/v1"],
        "teacher must be a mapping of options, not 5",
        setup=config("teacher: 5\n"),
    ),  # fmt: skip
    # models and data files
    Case(
        "model-with-broken-config",
        ["run", "--student-model", "model"],
        "error: model folder model: config.json is not valid JSON",
        setup=lambda t: write(t / "model" / "config.json", "{not json"),
    ),  # fmt: skip
    Case(
        "empty-jsonl",
        ["run", "--env", "jsonl", "--env-option", "path=data.jsonl"],
        "error: jsonl: path data.jsonl is empty",
        setup=labelled_jsonl(""),
    ),  # fmt: skip
    Case(
        "non-utf8-jsonl",
        ["run", "--env", "jsonl", "--env-option", "path=data.jsonl"],
        "error: jsonl: path data.jsonl is not UTF-8 text",
        setup=labelled_jsonl(NOT_UTF8),
    ),  # fmt: skip
    Case(
        "jsonl-path-is-a-folder",
        ["run", "--env", "jsonl", "--env-option", "path=somewhere"],
        "error: jsonl: path somewhere is a folder",
        setup=lambda t: (t / "somewhere").mkdir(),
    ),  # fmt: skip
    Case(
        "non-utf8-skill-tree",
        ["run", "--env", "jsonl", "--env-option", "path=data.jsonl", "--env-option", "skill_tree=tree.yaml"],
        "skill tree tree.yaml is not UTF-8 text",
        setup=lambda t: (
            labelled_jsonl(
                '{"prompt": "a", "answer": "b", "skills": "x"}\n{"prompt": "c", "answer": "d", "skills": "x"}\n'
            )(t),
            write(t / "tree.yaml", NOT_UTF8),
        ),
    ),  # fmt: skip
    Case(
        "bad-answer-form",
        ["run", "--env", "jsonl", "--env-option", "path=data.jsonl", "--env-option", "answer_form=[0-9"],
        "error: environment 'jsonl': answer_form: not a regular expression",
        setup=labelled_jsonl('{"prompt": "a", "answer": "1"}\n'),
    ),  # fmt: skip
    Case(  # a list is not turned into the text "[4]" that no answer matches (issue 34 item 4)
        "jsonl-list-answer",
        ["run", "--env", "jsonl", "--env-option", "path=data.jsonl"],
        "error: jsonl: row 2 of path data.jsonl: 'answer' is a list ([4]), not text: write it as a string",
        setup=labelled_jsonl('{"prompt": "1 + 2", "answer": "3"}\n{"prompt": "2 + 2", "answer": [4]}\n'),
    ),  # fmt: skip
    Case(  # rows no student can take are dropped at load, not trained on (issue 34 item 3)
        "jsonl-every-row-over-max-chars",
        ["run", "--env", "jsonl", "--env-option", "path=data.jsonl", "--env-option", "max_chars=5"],
        "error: jsonl: no usable row in path data.jsonl: every row needs a non-empty 'prompt' and 'answer' within "
        "max_chars=5 (2 longer)",
        setup=labelled_jsonl('{"prompt": "one plus two", "answer": "3"}\n{"prompt": "two plus two", "answer": "4"}\n'),
    ),  # fmt: skip
    Case(
        "jsonl-not-json-line",
        ["run", "--env", "jsonl", "--env-option", "path=data.jsonl"],
        "error: jsonl: could not read path data.jsonl: line 2 is not JSON",
        setup=labelled_jsonl('{"prompt": "a", "answer": "1"}\n{"prompt": "b", answer: 2}\n'),
    ),  # fmt: skip
    # run folders: never resumed, reported or exported into a mess
    Case("resume-not-a-run", ["resume", "."], "error: . is not a teachloop run folder"),
    Case(
        "resume-a-changed-phase-file",
        ["resume", "run", "--min-yield", "0.1"],
        "iter_0/eval/attempts.jsonl was changed after its phase finished",
        runs=1,
        setup=lambda t: write(t / "run" / "iter_0" / "eval" / "attempts.jsonl", "{}\n"),
    ),
    Case("report-nowhere", ["report", "nowhere"], "error: nowhere does not exist or is not a folder"),
    Case(
        "existing-run-name",
        ["run", "--out", ".", "--name", "run"],
        "error: run folder run already exists and is not empty",
        runs=1,
    ),
    Case(
        "export-into-its-own-iteration",
        ["export", "run", "--out", "run/iter_0", "--overwrite"],
        "error: --out run/iter_0 is inside the run folder",
        runs=1,
    ),  # fmt: skip
    Case(
        "export-over-another-run",
        ["export", "run", "--out", "other", "--overwrite"],
        "is inside the run folder",
        runs=2,
    ),
    Case(
        "export-over-a-folder-it-did-not-write",
        ["export", "run", "--out", "mine", "--overwrite"],
        "was not written by this command",
        runs=1,
        setup=lambda t: write(t / "mine" / "notes.txt", "mine"),
    ),  # fmt: skip
    Case(
        "export-into-a-file",
        ["export", "run", "--out", "file.txt"],
        "is a file",
        runs=1,
        setup=lambda t: write(t / "file.txt", "x"),
    ),
    *[
        Case(
            f"non-utf8-{name.replace('/', '-')}-{command}",
            [command, "run", *extra],
            "is not UTF-8 text",
            runs=1,
            setup=corrupt(name),
        )
        for name in ("config.yaml", "run.json", "iter_0/eval/done.json", "skills.json")
        for command, extra in (("resume", []), ("report", []), ("export", ["--out", "exported"]))
    ],
    # read-only run folders (immutable, so root is refused too)
    Case("read-only-resume", ["resume", "run"], "cannot take the lock of run run", runs=1, read_only=True),
    Case("read-only-report", ["report", "run"], "error: cannot write run/metrics.jsonl", runs=1, read_only=True),
    Case(
        "export-under-a-read-only-folder",
        ["export", "run", "--out", "run-ro/out"],
        "error: cannot write --out run-ro/out",
        runs=1,
        setup=lambda t: (t / "run-ro").mkdir(),
        read_only=True,
    ),  # fmt: skip
]


@contextmanager
def read_only(folders: list[Path]) -> Iterator[None]:
    """Folders no process may change: `chattr +i` as root (whom permissions do not stop), else
    write bits removed."""
    as_root = os.geteuid() == 0
    for folder in folders:
        if as_root:
            done = subprocess.run(["chattr", "-R", "+i", str(folder)], capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
        else:
            subprocess.run(["chmod", "-R", "a-w", str(folder)], check=True)
    try:
        yield
    finally:
        for folder in folders:
            undo = ["chattr", "-R", "-i", str(folder)] if as_root else ["chmod", "-R", "u+w", str(folder)]
            subprocess.run(undo, check=True)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_line_and_changes_nothing(case: Case, tmp_path: Path, small_run: Path) -> None:
    for name in ("run", "other")[: case.runs]:
        shutil.copytree(small_run, tmp_path / name)
    if case.setup:
        case.setup(tmp_path)
    before = snapshot(tmp_path)
    frozen = [tmp_path / "run"] + ([tmp_path / "run-ro"] if (tmp_path / "run-ro").exists() else [])
    with read_only(frozen) if case.read_only else nullcontext():
        out = teachloop(*case.args, cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and case.first_line in lines[0], out.stderr[-3000:]
    assert "restore it; restore it" not in lines[0]  # what to do is said once
    assert snapshot(tmp_path) == before  # a refusal changes nothing
    assert not (tmp_path / "runs").exists()  # and no run folder was left behind


def test_a_refused_resume_takes_the_lock_before_it_changes_anything(tmp_path: Path, small_run: Path) -> None:
    run = Path(shutil.copytree(small_run, tmp_path / "run"))
    before = snapshot(run)
    with RunStore(run).lock():  # another process holds the run
        out = teachloop("resume", str(run), "--min-yield", "0.1", "--quiet", cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"run {run} is in use by teachloop process {os.getpid()}" in lines[0], out.stderr
    assert snapshot(run) == before  # config.yaml still says what it said


def test_a_report_never_shrinks_what_it_cannot_rebuild(tmp_path: Path, small_run: Path) -> None:
    run = Path(shutil.copytree(small_run, tmp_path / "run"))
    metrics = (run / "metrics.jsonl").read_text()
    assert len(metrics.splitlines()) == 3
    shutil.rmtree(run / "iter_1" / "eval")
    out = teachloop("report", str(run), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "iter_1/eval missing" in out.stderr and f"teachloop resume {run}" in out.stderr
    assert (run / "metrics.jsonl").read_text() == metrics  # not cut to the one iteration left to rebuild
    report = (run / "report.md").read_text()
    assert "status: incomplete: iter_1/eval is missing" in report and "status: finished" not in report

    resumed = teachloop("resume", str(run), "--quiet", cwd=tmp_path)  # redoes it: the record is whole again
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3
    assert "status: finished" in (run / "report.md").read_text()


@pytest.mark.parametrize("garbage", [NOT_UTF8, b'not json\n{"cut\n[]\n1\n2\n3\n'], ids=["not-utf8", "not-json"])
@pytest.mark.parametrize("command", ["report", "resume"])
def test_a_garbage_metrics_file_is_rebuilt_from_the_artifacts(tmp_path, small_run, command, garbage):
    """metrics.jsonl is a copy of what the phase artifacts hold: report rebuilds a garbage one,
    as resume does, rather than refusing it (or keeping it because it has more lines)."""
    run = Path(shutil.copytree(small_run, tmp_path / "run"))
    metrics = (run / "metrics.jsonl").read_text()
    write(run / "metrics.jsonl", garbage)
    out = teachloop(command, str(run), *(["--quiet"] if command == "resume" else []), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (run / "metrics.jsonl").read_text() == metrics
