"""`teachloop show`: one self-contained page of a run, read in a real headless browser."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import teachloop

from teachloop.runs.reporting.iteration_data import example_skill, load_run_data

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
IN_CI = os.environ.get("CI", "").lower() == "true"  # .ci/run installs chromium: there it may not skip


def render(page: Path, tmp_path: Path, fragment: str = "") -> str:
    """The page's DOM after its script ran, as headless chromium has it."""
    if BROWSER is None:
        if IN_CI:
            pytest.fail("chromium is not installed: .ci/run installs it (apt-get install chromium)")
        pytest.skip("no chromium on this machine (apt-get install chromium): the page is not rendered")
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    done = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
         "--dump-dom", page.resolve().as_uri() + fragment],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0 and "<table" in done.stdout, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def shown(small_run, tmp_path_factory) -> Path:
    run = Path(shutil.copytree(small_run, tmp_path_factory.mktemp("show") / "small"))
    out = teachloop("show", str(run), "--no-open")
    assert out.returncode == 0, out.stderr[-3000:]
    assert str(run / "show.html") in out.stdout.replace("\n", "")
    return run


def test_the_page_is_one_offline_file_with_the_accuracy_table_and_the_data(shown: Path) -> None:
    html = (shown / "show.html").read_text()
    # nothing is fetched: no script, style or image from elsewhere
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the page must work offline"
    assert "<link" not in html
    records = [json.loads(line) for line in (shown / "metrics.jsonl").read_text().splitlines()]
    assert f"{records[-1]['accuracy']:.3f}" in html  # the final accuracy, in the table
    assert html.count("<svg") >= 2  # learning curves and the heat map
    # first, what the run hands back: the overall change and what was forgotten, beside the weak-skill gain
    handed = html.index("What the run hands back")
    assert handed < html.index("Accuracy per skill and iteration")
    assert "overall accuracy 0.700 -&gt; " in html and "forgotten (change interval below 0)" in html
    for data in load_run_data(shown).iterations:
        assert f'id="iter-{data.iteration}"' in html
        if data.plan is not None and data.plan.rationale.strip():
            assert data.plan.rationale.split()[0] in html
    report = (shown / "report.md").read_text()
    assert "## Data per iteration" in report and "| skill | asked | kept | rejected | shortfall |" in report


def test_a_browser_shows_the_tables_and_a_chosen_example_and_filters_by_skill(shown: Path, tmp_path: Path) -> None:
    first = load_run_data(shown).iterations[0]
    assert first.examples, "the small run's first data phase kept examples"
    chosen = first.examples[len(first.examples) // 2]
    skill = example_skill(chosen)
    dom = render(shown / "show.html", tmp_path)
    assert 'class="accuracy"' in dom and 'class="plan"' in dom
    assert chosen.id in dom and 'data-filter="(all)"' in dom

    filtered = render(shown / "show.html", tmp_path, f"#skill={skill}")
    assert f'data-filter="{skill}"' in filtered  # the script ran and read the fragment
    rows = re.findall(r'<tr class="example( filtered-out)?" data-skills="([^"]*)"', filtered)
    assert rows, "example rows carry their skills"
    for hidden, skills in rows:
        assert (skill in json.loads(skills.replace("&quot;", '"'))) == (not hidden), (skill, skills, hidden)
    assert any(hidden for hidden, _ in rows), "another skill's examples are hidden"


def test_show_refuses_a_folder_that_is_neither_a_run_nor_a_bench(tmp_path: Path) -> None:
    out = teachloop("show", str(tmp_path), "--no-open")
    assert out.returncode != 0 and "neither a run folder" in out.stderr
    assert "Traceback" not in out.stderr
