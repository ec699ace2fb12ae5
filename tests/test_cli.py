"""The help a user reads (bad input: test_bad_inputs.py)."""

import subprocess

from cli_fork import run_teachloop


def teachloop(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return run_teachloop(list(args), cwd=cwd, timeout=300)


def test_help_explains_every_option():
    out = teachloop("run", "--help")
    assert out.returncode == 0
    for option in ("--config", "--out", "--policy", "--iterations", "--budget", "--data", "--student", "--seed"):
        assert option in out.stdout
    assert "accumulate" in out.stdout and "restart" in out.stdout
    text = " ".join(out.stdout.split())  # help is wrapped to the terminal's width
    assert "[default: 600]" in text and "[default: 4]" in text  # defaults are shown, not eaten as markup
    top = teachloop("--help")
    for command in ("run", "resume", "report", "policies", "build-base"):
        assert command in top.stdout


def test_every_config_setting_has_a_flag_with_its_help_and_the_flags_set_what_a_file_sets():
    from teachloop.runs.config import RunConfig, load_config
    from teachloop.runs.flags import flags_of, overrides_from

    flags = flags_of(RunConfig)
    keys = {flag.key for flag in flags}
    for nested in ("train.lora.r", "train.epochs", "teacher.max_retries", "teacher.options", "engine_options"):
        assert nested in keys
    assert not [flag.key for flag in flags if not flag.help], "every flag explains itself"
    out = teachloop("run", "--help")
    text = " ".join(out.stdout.split())
    assert "--train.lora.r <int> LoRA rank. [default: 16]" in text
    assert "--train.epochs, --epochs <float>" in text and "--data accumulate|replace" in text

    by_key = {flag.key: flag for flag in flags}
    values = {
        by_key["train.lora.r"].param: 8, by_key["train.epochs"].param: 2.0, by_key["teacher.max_retries"].param: 3,
        by_key["teacher.options"].param: ["timeout=5", "base_url=http://127.0.0.1:9/v1"],
        by_key["train.lora.target_modules"].param: "[q_proj, v_proj]", by_key["teacher.send_seed"].param: False,
    }  # fmt: skip
    overrides = overrides_from(flags, values) | {"teacher.backend": "openai", "teacher.model": "m"}
    from_flags = load_config(None, overrides)
    from_file = RunConfig.model_validate(
        {
            "train": {"lora": {"r": 8, "target_modules": ["q_proj", "v_proj"]}, "epochs": 2.0},
            "teacher": {
                "backend": "openai", "model": "m", "max_retries": 3, "send_seed": False,
                "options": {"timeout": 5, "base_url": "http://127.0.0.1:9/v1"},
            },
        }
    )  # fmt: skip
    assert from_flags == from_file
