"""A third teacher backend is one class and one entry point: the example package
`examples/plugin-backend` (a transformers teacher) is installed and used in a run."""

import json

import pytest
import yaml

from conftest import installed_example, teachloop
from teachloop.agents.teacher import available_backends

pytestmark = pytest.mark.slow


def test_teacher_backend_plugin_installs_and_serves_a_run(tiny_teacher, tmp_path):
    with installed_example("plugin-backend", "teachloop-transformers-teacher", tmp_path):
        config = tmp_path / "run.yaml"
        config.write_text(
            "environment_options: {eval_per_skill: 3, pool_per_skill: 3}\nmin_yield: 0\nreplay: 8\n"
            "teacher: {max_tokens: 24, validation_retries: 1}\n"
        )
        out = teachloop(
            "run", "--teacher", f"hf:{tiny_teacher}", "--teacher-option", "schema_prompt=JSON please: ",
            "--config", str(config), "--iterations", "1",
            "--budget", "4", "--epochs", "1", "--out", str(tmp_path / "runs"), "--name", "hf", "--quiet",
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        run = tmp_path / "runs" / "hf"
        ledger = json.loads((run / "teacher_ledger.json").read_text())
        # random weights never write valid JSON: every reply was validated, re-asked once, recorded
        assert ledger["calls"] == 8 and ledger["invalid_replies"] == 8 and ledger["completion_tokens"] > 0
        failures = [json.loads(x) for x in (run / "teacher_failures.jsonl").read_text().splitlines()]
        assert len(failures) == 4 and all("does not fit NewExample" in f["error"] for f in failures)
        assert len(list((run / "cache").rglob("*.json"))) == 8  # teachloop's cache, not the plug-in's
        info = json.loads((run / "iter_0/data/done.json").read_text())["info"]
        assert info["yield"]["unfilled"] == 4 and info["teacher"]["calls"] == 8
        # its own options: recorded in the run's config, listed by `backends show`, a typo refused before spending
        recorded = yaml.safe_load((run / "config.yaml").read_text())["teacher"]["options"]
        assert recorded == {"dtype": "float32", "schema_prompt": "JSON please: "}
        shown = teachloop("backends", "show", "hf")
        assert shown.returncode == 0 and "dtype: Literal" in shown.stdout and "schema_prompt" in shown.stdout
        typo = teachloop(
            "run", "--teacher", f"hf:{tiny_teacher}", "--teacher-option", "dtyp=bfloat16", "--quiet", cwd=tmp_path
        )
        assert (
            typo.returncode == 2
            and "teacher backend 'hf': unknown option 'dtyp' (did you mean 'dtype'?)" in typo.stderr
        )
        assert [p.name for p in (tmp_path / "runs").iterdir()] == ["hf"]  # nothing was started
    assert "hf" not in available_backends()
    refused = teachloop("run", "--teacher", "hf:x", "--quiet", cwd=tmp_path)
    assert (
        refused.returncode == 2
        and "unknown teacher backend 'hf'; available: openai, raydata, raydata-vllm, vllm" in refused.stderr
    )
