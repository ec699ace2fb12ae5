"""Claims the README makes about the teacher client, the engines, diagnosis, DPO and the
policies that probe the student, each checked so that removing the behaviour fails a test."""

import json
import re
import shutil

import pytest
from conftest import teachloop
from fault_server import FaultServer
from pydantic import BaseModel

from teachloop.agents.diagnosis import llm_profile
from teachloop.agents.engines.filters import DataFilter
from teachloop.agents.engines.llm import LLMEngine
from teachloop.agents.teacher import TeacherConfig, TeacherLLM
from teachloop.environments.skillworld import SkillWorld
from teachloop.errors import TeachloopError
from teachloop.runs.loop.store import RunStore
from teachloop.skills.tree_file import read_tree_file
from teachloop.students import load_student
from teachloop.types import Attempt, DataPlan, Example, GenerationContext, GenerationRequest, TrainConfig


class Reply(BaseModel):
    answer: str


def client(server: FaultServer, tmp_path, **fields) -> TeacherLLM:
    cfg = TeacherConfig(backend="openai", model="m", base_url=server.base_url, **({"timeout": 5.0} | fields))
    return TeacherLLM(cfg, run_dir=tmp_path)


def schema_name(request: dict) -> str:
    return request["response_format"]["json_schema"]["name"]


def user_text(request: dict) -> str:
    return request["messages"][-1]["content"]


def test_a_429_waits_as_long_as_retry_after_says(tmp_path):
    with FaultServer(["429"], retry_after="1.2") as server:
        assert client(server, tmp_path).structured([[{"role": "user", "content": "q"}]], Reply)[0] is not None
    first, second = server.arrivals
    assert second - first >= 1.1  # the jittered exponential wait alone starts at 0.25 s


def test_cached_replies_are_not_shared_between_endpoints(tmp_path):
    conversation = [[{"role": "user", "content": "same question"}]]
    with FaultServer() as one, FaultServer() as two:
        client(one, tmp_path).structured(conversation, Reply)
        client(one, tmp_path).structured(conversation, Reply)
        assert one.total() == 1  # the same endpoint is served from the cache
        client(two, tmp_path).structured(conversation, Reply)
        assert two.total() == 1  # same model name, another server: asked, not answered from one's cache


def test_eval_decontamination_drops_prompts_sharing_an_8_gram():
    evaluation = ["Anna has three red apples and gives two of them to her brother Tom today"]
    data_filter = DataFilter(evaluation, ngram=8)
    shares_8 = Example(prompt="Now: anna has THREE red  apples and gives two of them, how many?", answer="1")
    shares_7 = Example(prompt="Bob has three red apples and gives one of them to his sister", answer="2")
    assert data_filter.check(shares_8) == "contaminated: shares a 8-gram with an eval prompt"
    assert data_filter.check(shares_7) is None  # 6 shared words in a row are allowed
    assert DataFilter(evaluation).check(shares_8) is None  # identity only without the n-gram rule


def test_self_consistency_keeps_only_examples_whose_independent_answer_agrees(tmp_path):
    def content(request):
        text = user_text(request)
        if schema_name(request) == "NewExample":
            k = int(re.search(r"variant 0\.0\.(\d+)", text).group(1))
            return {"question": f"copy {'abcde'[: k + 3]}", "answer": "abcde"[: k + 3]}
        question = re.fullmatch(r"copy (\w+)", text).group(1)  # the question alone: the chat's last turn
        return {"answer": question if len(question) % 2 else "jjjj"}  # agree on odd lengths only

    env = SkillWorld(eval_per_skill=2, pool_per_skill=2)
    plan = DataPlan(policy="p", iteration=0, requests=[GenerationRequest(skill="copy", count=3)])
    ctx = GenerationContext(iteration=0, seed=0, policy="p")
    with FaultServer(content=content) as server:
        result = LLMEngine(teacher=client(server, tmp_path), verify="consistency").generate(plan, env, ctx)
    assert [ex.answer for ex in result.examples] == ["abc", "abcde"]  # lengths 3 and 5
    assert [r.reason for r in result.rejected] == ["verification: independent answers ['jjjj'] disagree with 'abcd'"]


def test_llm_judged_profile_counts_the_named_skills_and_skips_correct_verdicts(tmp_path):
    env = SkillWorld(eval_per_skill=2, pool_per_skill=2)
    hard = [
        Attempt(example_id="a", prompt="reverse abc", response="abc", reference="cba", correct=False, score=0),
        Attempt(example_id="b", prompt="max 193", response="1", reference="9", correct=False, score=0),
        Attempt(example_id="c", prompt="copy ab", response="ab ", reference="ab", correct=False, score=0),
    ]
    verdicts = {
        "reverse abc": {"verdict": "wrong", "reason": "", "missing_skills": ["reverse", "first"]},
        "max 193": {"verdict": "wrong", "reason": "", "missing_skills": ["max"]},
        "copy ab": {"verdict": "correct", "reason": "only whitespace", "missing_skills": ["copy"]},
    }

    def content(request):
        return verdicts[re.search(r"Question: (.+)", user_text(request)).group(1)]

    with FaultServer(content=content) as server:
        profile = llm_profile(client(server, tmp_path), hard, env.skills)
    assert profile.per_item == {"a": ["reverse", "first"], "b": ["max"]}
    assert profile.counts == {"first": 1, "max": 1, "reverse": 1} and profile.judge == "llm:openai:m"


def margin(student, pairs) -> float:
    """Mean log-probability of the chosen answer minus the rejected one."""
    import torch

    tok, model = student.tokenizer, student.model
    total = 0.0
    with torch.no_grad():
        for ex in pairs:
            prompt = tok(ex.prompt, add_special_tokens=False)["input_ids"]
            scores = []
            for answer in (ex.answer, ex.rejected):
                ids = prompt + tok(answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
                logits = model(torch.tensor([ids])).logits[0, :-1].log_softmax(-1)
                targets = torch.tensor(ids[1:])
                scores.append(logits[torch.arange(len(targets)), targets][len(prompt) - 1 :].sum().item())
            total += scores[0] - scores[1]
    return total / len(pairs)


@pytest.mark.slow
def test_dpo_training_prefers_the_chosen_answers():
    env = SkillWorld(eval_per_skill=2, pool_per_skill=20)
    pairs = [
        ex.model_copy(update={"rejected": ex.answer[::-1] + "x"}) for ex in env.train_pool() if "reverse" in ex.skills
    ]
    student = load_student("embedded")
    before = margin(student, pairs)
    student.train_preferences(pairs, TrainConfig(method="full", epochs=2, learning_rate=5e-4, batch_size=8), seed=0)
    assert margin(student, pairs) > before + 1.0


@pytest.mark.slow
def test_the_probe_measures_a_step_on_an_item_as_helpful_for_that_item():
    env = SkillWorld(eval_per_skill=2, pool_per_skill=10)
    probe = load_student("embedded").probe(env, max_new_tokens=16)
    for item in [ex for ex in env.train_pool() if "reverse" in ex.skills][:4]:
        garbage = item.model_copy(update={"answer": "zzzzzzzz"})
        scores = probe.influence([item, garbage], reference=[item])
        assert scores[0] < 0 and scores[0] < scores[1], scores  # first order: its own loss falls most
        assert probe.influence([item], reference=[item]) == scores[:1]  # the student is left unchanged


SMALL = ["--iterations", "1", "--budget", "40", "--epochs", "1", "--quiet"]


def small_env(tmp_path) -> str:
    path = tmp_path / "small.yaml"
    path.write_text("environment_options: {eval_per_skill: 10, pool_per_skill: 10}\n")
    return str(path)


@pytest.mark.slow
def test_error_dpo_loop_trains_preference_pairs_of_the_students_own_errors(tmp_path):
    out = teachloop("run", "--policy", "error-dpo", "--out", str(tmp_path), "--name", "e", *SMALL)
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "e"
    examples = [json.loads(x) for x in (run / "iter_0/data/examples.jsonl").read_text().splitlines()]
    assert examples and all(ex["rejected"] and ex["rejected"] != ex["answer"] for ex in examples)
    info = json.loads((run / "iter_0/train/done.json").read_text())["info"]
    assert info["preference_pairs"] == len(examples)


@pytest.mark.slow
def test_influence_loop_scores_the_pool_selects_by_influence_and_writes_teacher_pairs(tmp_path):
    out = teachloop(
        "run", "--policy", "influence", "--out", str(tmp_path), "--name", "i", "--config", small_env(tmp_path), *SMALL
    )
    assert out.returncode == 0, out.stderr[-3000:]
    data = tmp_path / "i/iter_0/data"
    candidates = [json.loads(x) for x in (data / "candidates.jsonl").read_text().splitlines()]
    kept = [json.loads(x) for x in (data / "examples.jsonl").read_text().splitlines()]
    assert len(candidates) == 80 and len(kept) == 40  # over-generated twice the budget, kept the budget
    scores = sorted(c["meta"]["influence"] for c in candidates)
    assert max(k["meta"]["influence"] for k in kept) <= scores[39]  # the most helpful half
    pairs = [json.loads(x) for x in (data / "teacher_pairs.jsonl").read_text().splitlines()]
    assert pairs and all(p["chosen"]["influence"] <= p["rejected"]["influence"] for p in pairs)


@pytest.mark.slow
def test_llm2llm_loop_augments_the_seed_items_the_student_gets_wrong(tmp_path):
    out = teachloop(
        "run", "--policy", "llm2llm", "--out", str(tmp_path), "--name", "l", "--config", small_env(tmp_path), *SMALL
    )
    assert out.returncode == 0, out.stderr[-3000:]
    plan = json.loads((tmp_path / "l/iter_0/plan/plan.json").read_text())
    pool = {ex.id: ex for ex in SkillWorld(eval_per_skill=10, pool_per_skill=10).train_pool()}
    parents = [r["parent_id"] for r in plan["requests"]]
    assert parents and all(p in pool for p in parents)  # every request grows from a seed item
    assert {s for p in parents for s in pool[p].skills} <= {"reverse", "max", "succ", "double", "copy"}


def discovery_content(request):
    if schema_name(request) == "SkillProposal":
        return {"skills": [
            {"name": "Letters", "description": "work on letters", "group": ""},
            {"name": "Digits", "description": "work on digits", "group": ""},
        ]}  # fmt: skip
    operation = re.search(r"Question: (\w+)", user_text(request)).group(1)
    return {"skills": ["digits" if operation in ("max", "parity", "succ") else "letters"]}


@pytest.mark.slow
def test_skill_discovery_in_a_loop_and_through_the_cli(tmp_path):
    with FaultServer(content=discovery_content) as server:
        teacher = ["--teacher", "openai:fake", "--teacher-base-url", server.base_url]
        out = teachloop(
            "run", "--skills", "discover", "--policy", "stat-sel", *teacher, "--config", small_env(tmp_path),
            "--out", str(tmp_path), "--name", "d", "--iterations", "1", "--budget", "20", "--epochs", "1", "--quiet",
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        small = ["--env-option", "eval_per_skill=10", "--env-option", "pool_per_skill=10"]  # 160 items to label
        found, cache = str(tmp_path / "found.json"), str(tmp_path / "c")
        cli = teachloop("skills", "discover", *teacher, *small, "--out", found, "--cache", cache)
        assert cli.returncode == 0, cli.stderr[-3000:]
    run = tmp_path / "d"
    assert sorted(read_tree_file(run / "skills.json").leaves()) == ["digits", "letters"]
    report = json.loads((run / "iter_0/eval/report.json").read_text())
    assert set(report["skill_accuracy"]) == {"digits", "letters"}  # evaluation is reported per discovered skill
    labels = [json.loads(x) for x in (tmp_path / "found.labels.jsonl").read_text().splitlines()]
    assert labels and {s for row in labels for s in row["skills"]} == {"digits", "letters"}
    shutil.rmtree(tmp_path / "c")


SECRET = "sk-test-9f8e7d6c5b4a39281706"


@pytest.mark.slow
def test_an_api_key_in_a_yaml_config_never_reaches_disk(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    teacher = f"teacher: {{backend: openai, model: fake, api_key: {SECRET}}}\n"
    small = "environment_options: {eval_per_skill: 5, pool_per_skill: 5}\nverify: none\nmin_yield: 0\nreplay: 8\n"
    (tmp_path / "run.yaml").write_text(small + teacher)
    bench = {
        "policies": ["uniform"], "seeds": [0], "budget": 8, "iterations": 1,
        "run": {"environment_options": {"eval_per_skill": 5, "pool_per_skill": 5}, "verify": "none",
                "min_yield": 0, "replay": 8, "train": {"epochs": 1},
                "teacher": {"backend": "openai", "model": "fake", "api_key": SECRET}},
    }  # fmt: skip
    import yaml

    (tmp_path / "bench.yaml").write_text(yaml.safe_dump(bench))
    with FaultServer() as server:
        run = teachloop(
            "run", "--config", str(tmp_path / "run.yaml"), "--teacher-base-url", server.base_url, "--iterations", "1",
            "--budget", "8", "--epochs", "1", "--out", str(tmp_path / "runs"), "--name", "r", "--quiet",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        bench["run"]["teacher"]["base_url"] = server.base_url
        (tmp_path / "bench.yaml").write_text(yaml.safe_dump(bench))
        benched = teachloop("bench", str(tmp_path / "bench.yaml"), "--out", str(tmp_path / "bench"))
        assert benched.returncode == 0, benched.stderr[-3000:]
    assert server.requests and {r["authorization"] for r in server.requests} == {f"Bearer {SECRET}"}  # it was used
    files = [p for folder in ("runs", "bench") for p in (tmp_path / folder).rglob("*") if p.is_file()]
    assert len(files) > 30
    assert not [p for p in files if SECRET.encode() in p.read_bytes()]  # not in any file: configs, caches, logs
    assert "<given; never stored>" in (tmp_path / "runs/r/config.yaml").read_text()

    # the run folder's config holds no key: a resume needs it from the environment
    cfg = RunStore(tmp_path / "runs/r").config().teacher
    with pytest.raises(TeachloopError, match="export OPENAI_API_KEY"):
        cfg.options.resolved_api_key()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    assert cfg.options.resolved_api_key() == "sk-from-env"


@pytest.mark.slow
def test_delta_pairs_a_weak_models_answer_over_a_weaker_ones_and_sft_keeps_the_chosen_alone(tmp_path):
    # two "models" on two servers: the chosen one answers the skillworld solver's answer, the
    # rejected one repeats the question's argument; where both would agree there is no pair
    env = SkillWorld(eval_per_skill=10, pool_per_skill=10)

    def chosen(request):
        return {"answer": env.solve(user_text(request)) or "?"}

    def rejected(request):
        question = user_text(request)
        return {"answer": env.solve(question) if question.startswith("copy") else question.split()[-1]}

    with FaultServer(content=chosen) as good, FaultServer(content=rejected) as bad:
        options = [
            "--policy-option", "chosen=openai:good", "--policy-option", f"chosen_options={{base_url: {good.base_url}}}",
            "--policy-option", "rejected=openai:bad", "--policy-option", f"rejected_options={{base_url: {bad.base_url}}}",
        ]  # fmt: skip
        runs = {}
        for pairs in ("true", "false"):
            name = f"delta-{pairs}"
            out = teachloop(
                "run", "--policy", "delta", *options, "--policy-option", f"pairs={pairs}", "--config",
                small_env(tmp_path), "--out", str(tmp_path), "--name", name, *SMALL,
            )  # fmt: skip
            assert out.returncode == 0, out.stderr[-3000:]
            runs[pairs] = [
                json.loads(x) for x in (tmp_path / name / "iter_0/data/examples.jsonl").read_text().splitlines()
            ]
        assert good.ready_checks == 2 and bad.ready_checks == 1  # both started before the first evaluation
        # both models answer in the form skillworld declares for the prompt's skill (a lone "}" cannot pass)
        for request in good.requests + bad.requests:
            skill = user_text(request).split()[0]
            answer = request["response_format"]["json_schema"]["schema"]["properties"]["answer"]
            assert answer["pattern"] == f"^(?:{env.item_form(skill).answer})$", (skill, answer)
    with_pairs, alone = runs["true"], runs["false"]
    assert with_pairs and all(ex["rejected"] and ex["rejected"] != ex["answer"] for ex in with_pairs)
    assert not any(ex["prompt"].startswith("copy") for ex in with_pairs)  # no delta, no pair
    assert all(ex["answer"] == env.solve(ex["prompt"]) for ex in with_pairs + alone)  # the chosen model's answers
    assert alone and all(ex["rejected"] is None for ex in alone)  # the same prompts, SFT on the chosen alone
    assert {ex["prompt"] for ex in with_pairs} <= {ex["prompt"] for ex in alone}
    info = json.loads((tmp_path / "delta-true/iter_0/train/done.json").read_text())["info"]
    assert info["preference_pairs"] == len(with_pairs)
    assert (tmp_path / "delta-true/delta-rejected_ledger.json").is_file()
