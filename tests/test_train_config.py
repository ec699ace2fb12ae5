"""Each training method's own settings reach its trainer (one typed config per method)."""

import pytest
from pydantic import ValidationError

from teachloop.runs.config import RunConfig
from teachloop.students.hf.student import TransformersStudent as Student
from teachloop.types import Example, TrainConfig


def test_dpo_beta_and_sft_weight_from_the_config_reach_the_dpo_trainer(tiny_teacher, monkeypatch):
    student = Student.load(tiny_teacher)
    seen = {}

    def fit(trainer_cls, args, rows, lengths, cfg, progress):
        seen["beta"], seen["loss_type"] = args.beta, list(args.loss_type)
        raise StopIteration  # the arguments are what this test reads

    monkeypatch.setattr(student, "_fit", fit)
    pairs = [Example(prompt="copy ab", answer="ab", rejected="ba", skills=["copy"])] * 4
    config = RunConfig.model_validate({"train": {"method": "full", "dpo": {"beta": 0.3, "sft_weight": 0}}})
    with pytest.raises(StopIteration):
        student.train_preferences(pairs, config.train)
    assert seen == {"beta": 0.3, "loss_type": ["sigmoid"]}
    with pytest.raises(StopIteration):
        student.train_preferences(pairs, TrainConfig(method="full"))
    assert seen == {"beta": 0.1, "loss_type": ["sigmoid", "sft"]}  # the defaults: RPO


def test_a_bad_dpo_setting_names_its_field():
    with pytest.raises(ValidationError, match="train.dpo.beta"):
        RunConfig.model_validate({"train": {"dpo": {"beta": 0}}})
    with pytest.raises(ValidationError, match="train.dpo.bete"):
        RunConfig.model_validate({"train": {"dpo": {"bete": 0.2}}})


def test_method_distill_is_shorthand_for_objective_distill_and_keeps_the_scope_auto():
    train = RunConfig.model_validate({"train": {"method": "distill"}}).train
    assert (train.objective, train.method) == ("distill", "auto")
    train = TrainConfig.model_validate({"objective": "distill", "method": "lora", "distill": {"beta": 0.5}})
    assert (train.objective, train.method, train.distill.beta) == ("distill", "lora", 0.5)
    assert TrainConfig().objective == "auto" and TrainConfig().distill.on_policy == 1.0
    with pytest.raises(ValidationError, match="method: distill is shorthand for objective: distill"):
        TrainConfig.model_validate({"method": "distill", "objective": "auto"})


@pytest.mark.parametrize(
    ("distill", "field"),
    [({"beta": 1.5}, "beta"), ({"on_policy": 0}, "on_policy"), ({"temperature": 0}, "temperature"),
     ({"max_new_tokens": 0}, "max_new_tokens"), ({"lmbda": 0.5}, "lmbda")],
)  # fmt: skip
def test_a_bad_distill_setting_names_its_field(distill, field):
    with pytest.raises(ValidationError, match=f"train.distill.{field}"):
        RunConfig.model_validate({"train": {"objective": "distill", "distill": distill}})


def test_the_distill_settings_are_run_flags():
    from teachloop.runs.flags import flags_of

    names = {name for flag in flags_of(RunConfig) for name in flag.names}
    assert {"--train.objective", "--train.distill.beta", "--train.distill.on-policy"} <= names
    assert {"--train.distill.temperature", "--train.distill.max-new-tokens"} <= names
