import json

import pytest

from teachloop.errors import ConfigError, RunStoreError
from teachloop.runs.config import RunConfig, load_config
from teachloop.runs.loop.store import RunStore


def test_yaml_then_flags(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("policy: uniform\nbudget: 50\ntrain:\n  epochs: 2\n")
    cfg = load_config(path, {"budget": 70, "train.learning_rate": 5e-4, "seed": None})
    assert cfg.policy == "uniform" and cfg.budget == 70
    assert cfg.train.epochs == 2 and cfg.train.learning_rate == 5e-4
    assert cfg.seed == 0  # None means "not given"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"iterations": -1}, "iterations: Input should be greater than or equal to 0"),
        ({"data": "sometimes"}, "data: Input should be 'accumulate' or 'replace'"),
        ({"student": "forget"}, "student: Input should be 'continue' or 'restart'"),
        ({"train.learning_rate": 3.0}, "learning_rate above 1.0"),
        ({"budget": -5}, "budget"),
        ({"name": "a/b"}, "plain folder name"),
    ],
)
def test_invalid_values_name_the_field(overrides, message):
    with pytest.raises(ConfigError, match="invalid config") as err:
        load_config(None, overrides)
    assert message in str(err.value)


def test_unknown_keys_and_bad_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("polcy: uniform\n")
    with pytest.raises(ConfigError, match="polcy: Extra inputs are not permitted"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)
    bad.write_text("a: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_a_phase_appears_only_when_it_finished(tmp_path):
    store = RunStore.create(tmp_path / "run", RunConfig())
    with pytest.raises(RuntimeError), store.write_phase(0, "eval") as writer:
        (writer.path / "attempts.jsonl").write_text("half")
        raise RuntimeError("killed mid-phase")
    assert not store.phase_dir(0, "eval").exists() and not store.is_done(0, "eval")
    assert not list(store.iter_dir(0).iterdir())  # temporary folder removed too
    with store.write_phase(0, "eval") as writer:
        (writer.path / "attempts.jsonl").write_text("ok")
        writer.info = {"n": 1}
    assert store.is_done(0, "eval") and store.phase_record(0, "eval").info == {"n": 1}
    with pytest.raises(RunStoreError, match="already done"), store.write_phase(0, "eval"):
        pass


def test_store_refuses_folders_that_are_not_runs(tmp_path):
    with pytest.raises(RunStoreError, match="does not exist"):
        RunStore.open(tmp_path / "nothing")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "file.txt").write_text("x")
    with pytest.raises(RunStoreError, match="not a teachloop run folder"):
        RunStore.open(tmp_path / "plain")
    with pytest.raises(RunStoreError, match="not empty; choose another --name"):
        RunStore.create(tmp_path / "plain", RunConfig())
    RunStore.create(tmp_path / "run", RunConfig())
    with pytest.raises(RunStoreError, match="resume it"):
        RunStore.create(tmp_path / "run", RunConfig())
    assert RunStore.open(tmp_path / "run").config() == RunConfig()


def test_a_run_started_with_flat_teacher_settings_resumes_with_them_moved_into_options(tmp_path):
    """Runs made before backends owned their settings wrote `teacher: {base_url: ...}`: read
    back, those keys are the backend's options, and the run is the same experiment."""
    from teachloop.runs.loop.store import experiment

    flat = {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1", "concurrency": 4, "timeout": 9}
    old = RunConfig.model_validate({"teacher": flat, "name": "r"})
    new = RunConfig.model_validate(
        {"teacher": {"backend": "openai", "model": "m", "options": {"base_url": "http://127.0.0.1:9/v1"}}, "name": "r"}
    )
    assert (old.teacher.options.base_url, old.teacher.options.concurrency, old.teacher.options.timeout) == (
        "http://127.0.0.1:9/v1", 4, 9.0,
    )  # fmt: skip
    assert experiment(old) == experiment(new)  # concurrency and timeout are operational: a resume may change them
    vllm = {"backend": "vllm", "model": "m", "vllm_options": {"max_model_len": 2048}}
    changed = RunConfig.model_validate({"teacher": {**vllm, "vllm_options": {"max_model_len": 4096}}})
    assert experiment(RunConfig.model_validate({"teacher": vllm})) != experiment(changed)  # not operational
    # the marker of such a run holds the flat experiment; the resume check reads it as today's
    store = RunStore.create(tmp_path / "r", new)
    marker = store.marker()
    marker["experiment"]["teacher"] = {k: v for k, v in flat.items() if k not in ("base_url", "concurrency", "timeout")}
    (tmp_path / "r" / "run.json").write_text(json.dumps(marker))
    store.check_config(new)


def test_a_shared_setting_the_backend_lacks_is_dropped_with_a_warning_beside_model_and_refused_in_options(caplog):
    """A file written for an openai teacher (`concurrency: 4` beside `model`) still runs with
    `--teacher vllm:...`, as before backends owned their settings, and says what it ignored;
    the same key inside `options`, or a key no backend ever had, is an error."""
    with caplog.at_level("WARNING", logger="teachloop.agents.teacher.config"):
        cfg = RunConfig.model_validate({"teacher": {"backend": "vllm", "model": "m", "concurrency": 4}})
    assert cfg.teacher.options.model_dump() == {"vllm_options": {}}
    assert "teacher backend 'vllm' has no setting concurrency: ignored" in caplog.text
    # a run folder's config.yaml from before holds every shared setting at its old default: no noise
    caplog.clear()
    old_defaults = {"base_url": None, "api_key": None, "concurrency": 8, "timeout": 60.0, "qps": None}
    with caplog.at_level("WARNING", logger="teachloop.agents.teacher.config"):
        RunConfig.model_validate({"teacher": {"backend": "vllm", "model": "m", **old_defaults, "vllm_options": {}}})
    assert "has no setting" not in caplog.text
    for teacher in ({"options": {"concurrency": 4}}, {"concurency": 4}):
        with pytest.raises(ValueError, match="unknown option 'concur"):
            RunConfig.model_validate({"teacher": {"backend": "vllm", "model": "m", **teacher}})
