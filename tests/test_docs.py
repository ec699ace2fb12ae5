"""The README and the pages under docs/ say what is true: their links resolve, the repository
paths they name exist, and the commands marked for it run, for real, with exit code 0.

Which commands run: every fenced ```bash block whose preceding non-blank line is the HTML
comment `<!-- test: run -->` (invisible on GitHub). Unmarked blocks are not run: they need a
GPU, a real model, a network, a cluster, a plug-in install or the whole test suite
(`bash scripts/test.sh`). Mark only blocks that run in seconds to a minute on 2 CPU cores.

How a marked block runs (one test per markdown file, its marked blocks in document order,
every command with cwd = the repository root and one temporary folder per file, TMP):
- `\\` continuations are joined and a trailing `# comment` dropped; a line is one command,
  split further on `&&`;
- a `pip install ...` step is dropped: the test's environment has teachloop installed;
- `--out X` with a relative X becomes `--out TMP/X`; `teachloop run` and `teachloop bench`
  without `--out` get `--out TMP/runs` (their default folder, moved under TMP);
- `runs/<name>` (the docs' placeholder for a run folder) becomes the newest run folder under
  TMP/runs, i.e. the one an earlier command of the same file made;
- a fenced block of any language preceded by `<!-- test: file NAME -->` (a config or bench
  file the page shows) is written to TMP/NAME before the page's commands run, and a command
  word equal to NAME becomes TMP/NAME.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from cli_fork import run_teachloop

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARK = "<!-- test: run -->"
FILE_MARK = re.compile(r"<!-- test: file ([\w.-]+) -->")
RUN_PLACEHOLDER = "runs/<name>"


# -- reading the markdown -------------------------------------------------------------------------
def fenced_blocks(text: str) -> list[tuple[int, str, str, str]]:
    """(line of the opening fence, language, the non-blank line before it, body) of every fenced block."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if lines[i].startswith("```") and lines[i].strip() != "```":
            language, start, body = lines[i][3:].strip(), i + 1, []
            previous = next((line.strip() for line in reversed(lines[:i]) if line.strip()), "")
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            blocks.append((start, language, previous, "\n".join(body)))
        i += 1
    return blocks


def bash_blocks(text: str) -> list[tuple[int, bool, str]]:
    """(line number, marked to run, body) of every ```bash block."""
    return [(line, previous == MARK, body) for line, lang, previous, body in fenced_blocks(text) if lang == "bash"]


def file_blocks(text: str) -> dict[str, str]:
    """The blocks marked `<!-- test: file NAME -->`: NAME -> content."""
    found = {}
    for _, _, previous, body in fenced_blocks(text):
        match = FILE_MARK.fullmatch(previous)
        if match:
            found[match.group(1)] = body + "\n"
    return found


def commands(body: str) -> list[str]:
    """The block's commands: continuations joined, comments and pip steps dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    found = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        step: list[str] = []
        for word in [*words, "&&"]:
            if word != "&&":
                step.append(word)
                continue
            if step and step[:2] != ["pip", "install"]:
                found.append(shlex.join(step))
            step = []
    return found


def newest_run(tmp: Path) -> Path:
    runs = sorted((tmp / "runs").glob("*/run.json"), key=lambda p: p.stat().st_mtime)
    assert runs, f"the page names {RUN_PLACEHOLDER} before any `teachloop run` of it made one"
    return runs[-1].parent


def rewrite(command: str, tmp: Path, files: tuple[str, ...] = ()) -> list[str]:
    """One documented command as run here: outputs under tmp, the placeholder run resolved,
    the page's files named by their place in tmp."""
    words = [str(tmp / w) if w in files else w for w in shlex.split(command)]
    if RUN_PLACEHOLDER in command:
        run = str(newest_run(tmp))
        words = [w.replace(RUN_PLACEHOLDER, run) for w in words]
    for i, word in enumerate(words[:-1]):
        if word == "--out" and not Path(words[i + 1]).is_absolute():
            words[i + 1] = str(tmp / words[i + 1])
    if words[:1] == ["teachloop"] and words[1:2] in (["run"], ["bench"]) and "--out" not in words:
        words += ["--out", str(tmp / "runs")]
    return words


def marked_pages() -> list[Path]:
    return [page for page in PAGES if any(marked for _, marked, _ in bash_blocks(page.read_text()))]


# -- the commands -----------------------------------------------------------------------------------
def test_the_pages_mark_the_cheap_commands():
    """The commands that must run are marked where they are documented (a guard against a page
    losing its marks and this test silently running nothing)."""
    marked = {
        " ".join(shlex.split(cmd)).split(" --out")[0]
        for page in PAGES
        for _, is_marked, body in bash_blocks(page.read_text())
        if is_marked
        for cmd in commands(body)
    }
    for wanted in (
        "teachloop run",
        "teachloop --help",
        "teachloop policies list",
        "teachloop environments list",
        "teachloop environments check skillworld",
        f"teachloop report {RUN_PLACEHOLDER}",
    ):
        assert wanted in marked, f"no marked block runs {wanted!r}"
    assert any(cmd.startswith(f"teachloop export {RUN_PLACEHOLDER}") for cmd in marked)
    assert any("examples/hierarchy/data.jsonl" in cmd for cmd in marked), "the hierarchy example"


@pytest.mark.slow
@pytest.mark.parametrize("page", marked_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_marked_commands_run(page: Path, tmp_path: Path):
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    files = file_blocks(page.read_text())
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    for line, marked, body in bash_blocks(page.read_text()):
        if not marked:
            continue
        for command in commands(body):
            words = rewrite(command, tmp_path, tuple(files))
            done = (
                run_teachloop(words[1:], cwd=ROOT, env=env, timeout=900)
                if words[0] == "teachloop"
                else subprocess.run(words, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
            )
            assert done.returncode == 0, (
                f"{page.relative_to(ROOT)}:{line}: `{command}` (run as `{shlex.join(words)}`) "
                f"exited {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
            )


def test_the_command_rewrites():
    tmp = Path("/tmp/x")
    assert commands("pip install -e . && teachloop run   # a loop\n") == ["teachloop run"]
    assert commands("teachloop run --env jsonl \\\n  --budget 24\n") == ["teachloop run --env jsonl --budget 24"]
    assert rewrite("teachloop run", tmp) == ["teachloop", "run", "--out", "/tmp/x/runs"]
    assert rewrite("teachloop bench b.yaml --out bench-runs/b", tmp)[-1] == "/tmp/x/bench-runs/b"
    assert rewrite("teachloop --help", tmp) == ["teachloop", "--help"]
    assert rewrite("teachloop run --config my.yaml", tmp, ("my.yaml",))[3] == "/tmp/x/my.yaml"
    page = "<!-- test: file my.yaml -->\n```yaml\na: 1\n```\n\n<!-- test: run -->\n```bash\nls\n```\n"
    assert file_blocks(page) == {"my.yaml": "a: 1\n"} and bash_blocks(page) == [(7, True, "ls")]


# -- links and paths --------------------------------------------------------------------------------
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
REPO_PATH = re.compile(r"(?<![\w/.$<-])((?:teachloop|tests|benchmarks|examples|scripts)/[\w./-]*[\w/])")


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    found = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return found


def without_code_blocks(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path):
    broken = []
    for target in LINK.findall(without_code_blocks(page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target} (no {resolved})")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no heading #{anchor} in {resolved.name})")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_path_named_exists(page: Path):
    """`teachloop/...py`, `tests/...`, `benchmarks/...`, `examples/...`, `scripts/...`."""
    missing = sorted(
        {
            path
            for path in REPO_PATH.findall(page.read_text())
            if "<" not in path and not (ROOT / path.rstrip("/")).exists()
        }
    )
    assert not missing, f"{page.relative_to(ROOT)} names paths that do not exist: {missing}"


def test_the_environment_page_documents_every_hook_partial_credit_and_meta():
    """docs/environments.md's hook table names every optional hook teachloop checks, and the page
    says how partial credit goes in, what becomes of `Example.meta` and how `generate` is called."""
    from teachloop.environments.base import ENVIRONMENT_CONTRACT

    page = (ROOT / "docs" / "environments.md").read_text()
    table = page[page.index("| hook | protocol |") :]
    table = table[: table.index("\n\n")]
    for hook in ENVIRONMENT_CONTRACT.optional:
        assert f"| `{hook.member}" in table, hook.member
        if hook.protocol is not None:
            assert f"`{hook.protocol.__name__}`" in table, hook.protocol.__name__
    text = " ".join(page.split())
    assert "scored_attempt(example, response, correct, score=None)" in text and "Partial credit" in text
    assert "### What becomes of `Example.meta`" in page and "It is not in `iter_<i>/eval/attempts.jsonl`" in text
    assert "How the programmatic engine calls `generate`**: one item per call" in text
    assert '--env-option "tasks=[gcd, lcm]"' in text and "`--iterations 0` evaluates the starting student" in text
