"""`teachloop show`: one self-contained page of a run, read in a real headless browser."""

import json
import os
import re
import shutil
import subprocess
from html import escape
from pathlib import Path

import pytest
from conftest import teachloop

from teachloop.runs.reporting.iteration_data import example_skill, load_run_data
from teachloop.runs.reporting.report import run_tree

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


def test_the_page_shows_the_wrong_answers_the_plan_against_the_next_evaluation_and_lineage_once(shown: Path) -> None:
    from teachloop.runs.loop.artifacts import EvalFiles

    html = (shown / "show.html").read_text()
    # the student's wrong answers, which the diagnosis reads, per skill
    wrong = next(a for a in EvalFiles.read_attempts(shown / "iter_0" / "eval") if not a.correct)
    assert "The student's wrong answers (what the diagnosis read)" in html
    assert re.search(
        r"<tr class=\"wrong\"[^>]*>((?!</tr>).)*" + re.escape(f"<pre>{escape(wrong.response)}</pre>"), html, re.S
    )
    # the plan's targets beside their accuracy there and at the next evaluation; its columns explained
    records = [json.loads(line) for line in (shown / "metrics.jsonl").read_text().splitlines()]
    plan = html[html.index('<table class="plan"') :]
    plan = plan[: plan.index("</table>")]
    assert "accuracy at iter 0" in plan and "accuracy at iter 1" in plan and "change (points)" in plan
    target = max(load_run_data(shown).iterations[0].skill_lines(), key=lambda s: s.asked).skill
    before, after = records[0]["node_accuracy"][target], records[1]["node_accuracy"][target]
    assert re.search(
        rf"<td>{target}</td><td class=\"num\">{before:.2f}</td>.*?<td class=\"num\">{after:.2f}</td>"
        rf"<td class=\"num\">{re.escape(f'{(after - before) * 100:+.0f}')}</td>",
        plan,
    ), plan[:3000]
    assert '<th title="candidates the filters dropped' in plan and "shortfall: asked slots nothing was kept for" in html
    # an example row holds its own prompt and answer, not the lineage every example shares, nor a hash id column
    rows = re.findall(r'<tr class="example".*?</tr>', html, re.S)
    assert rows and not any("policy " in row or "teacher " in row for row in rows), rows[:2]
    assert "every one: source generated; iteration 0; skill " in html and "<th>id</th>" not in html


def test_the_skill_filter_counts_what_it_keeps_and_leaves_no_gaps(shown: Path, tmp_path: Path) -> None:
    first = load_run_data(shown).iterations[0]
    by_reason = first.rejections()
    assert by_reason, "the small run's first data phase rejected some candidates"
    reason, items = next(iter(by_reason.items()))
    skill = example_skill(items[0].example)
    dom = render(shown / "show.html", tmp_path, f"#skill={skill}")
    # the rejected count of a reason is the chosen skill's, not every skill's
    section = dom[dom.index('id="iter-0"') :]
    count = re.search(rf"<summary>{re.escape(reason)}: <span[^>]*>(\d+)</span>", section)
    assert count and int(count.group(1)) == sum(example_skill(r.example) == skill for r in items), count
    # the heat map's shown rows close up: the chosen skill's row moves up over the hidden ones, the picture shrinks
    heat = re.search(r"<svg[^>]*data-height[^>]*>", dom)
    assert heat, "the heat map carries its full height"
    full = int(re.search(r'data-height="(\d+)"', heat.group(0)).group(1))
    now = int(re.search(r'\sheight="(\d+)"', heat.group(0)).group(1))
    assert now < full
    moved = re.findall(r'<g data-skills="([^"]*)" data-row="(\d+)"[^>]*transform="translate\(0,(-?\d+)\)"', dom)
    assert any(skill in json.loads(s.replace("&quot;", '"')) and int(dy) < 0 for s, _, dy in moved), moved[:5]
    # a skill the first plan left alone: its plan, examples and rejections say so rather than leave a gap
    assert first.plan is not None
    untouched = next(s for s in run_tree(shown).leaves() if s not in first.plan.allocation())
    dom = render(shown / "show.html", tmp_path, f"#skill={untouched}")
    section = dom[dom.index('id="iter-0"') : dom.index('id="iter-1"')]
    assert section.count('class="listing empty"') >= 3, section[:4000]  # plan, examples, rejected (and wrong)
    assert "the plan asked nothing of this skill" in section and "no examples of this skill" in section


def test_a_bench_page_fits_a_1280_pixel_window_and_its_heat_map_shares_the_run_pages_colours(tmp_path: Path) -> None:
    import yaml
    from matplotlib.colors import to_hex
    from test_terminal import offline_bench

    from teachloop.runs.reporting.leaderboard import heat_colormap
    from teachloop.runs.reporting.show import _heat

    bench = tmp_path / "bench"
    results = offline_bench(tmp_path)
    bench.mkdir()
    config = {"policies": ["uniform", "stat-syn", "stat-syn-mixed"], "seeds": [0, 1, 2], "budget": 600}
    (bench / "bench.yaml").write_text(yaml.safe_dump({**config, "iterations": 4, "baseline": "uniform"}))
    rows = [row.model_dump(mode="json") for row in results.rows]
    (bench / "leaderboard.json").write_text(json.dumps({"rows": rows, "missing": [], "failed": []}))
    out = teachloop("show", str(bench), "--no-open")
    assert out.returncode == 0, out.stderr[-3000:]
    html = (bench / "show.html").read_text()
    # the leaderboard as the terminal prints it: what every row shares said once, every column folded away
    assert "Leaderboard (skillworld; teacher none; 3 seeds)" in html and "every column (as in leaderboard.md)" in html
    if BROWSER is None:
        render(bench / "show.html", tmp_path)  # skips, or fails in CI, saying why
    measured = bench / "measured.html"
    script = "<script>document.body.setAttribute('data-width', document.documentElement.scrollWidth)</script>"
    measured.write_text(html.replace("</body>", script + "</body>"))
    done = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'p'}",
         "--window-size=1280,900", "--dump-dom", measured.resolve().as_uri()],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    width = re.search(r'data-width="(\d+)"', done.stdout)
    assert width and int(width.group(1)) <= 1280, (width, done.stderr[-2000:])
    # the bench's heat map (matplotlib) and the run pages' (SVG) colour an accuracy alike
    for value in (0.0, 0.25, 0.5, 0.8, 1.0):
        png, svg = to_hex(heat_colormap()(value)), _heat(value)  # matplotlib's table of 256 rounds a little
        assert all(abs(int(png[k : k + 2], 16) - int(svg[k : k + 2], 16)) <= 2 for k in (1, 3, 5)), (value, png, svg)
