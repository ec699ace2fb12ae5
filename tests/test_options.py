"""Typed options and declared capabilities: every component declares its options as a
pydantic model, loading validates them (command-line text converted to the declared
types) and checks the component's hooks, and a run fails before any model loads when its
components cannot work together."""

import inspect
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import teachloop
from pydantic import BaseModel, ConfigDict, Field

from teachloop import registry
from teachloop.agents.engines import ENGINES
from teachloop.agents.policies import POLICIES, POLICY_CONTRACT, available_policies, get_policy
from teachloop.agents.state import TeacherState
from teachloop.environments import ENVIRONMENT_CONTRACT, ENVIRONMENTS, available_environments, get_environment
from teachloop.environments.skillworld import SkillWorld
from teachloop.errors import ConfigError, PluginError
from teachloop.registry import Component
from teachloop.runs.config import load_config
from teachloop.runs.flags import key_values
from teachloop.runs.loop.assemble import assemble_run
from teachloop.runs.loop.tracking import TRACKERS
from teachloop.skills.tree import SkillTree
from teachloop.types import DataPlan, Example

BUILT_IN_ENVIRONMENTS = ["code", "jsonl", "math", "skillworld"]


BUILT_INS = (
    [(POLICIES, name) for name in available_policies()]
    + [(ENVIRONMENTS, name) for name in BUILT_IN_ENVIRONMENTS]
    + [(ENGINES, "programmatic"), (ENGINES, "llm")]
    + [(TRACKERS, name) for name in ("trackio", "wandb", "mlflow", "tensorboard")]
)


# -- every built-in declares its options once ------------------------------------------------------
@pytest.mark.parametrize(("kind", "name"), BUILT_INS, ids=lambda x: x if isinstance(x, str) else x.kind)
def test_every_built_in_declares_its_documented_options_once(kind, name):
    """Its `Options` model is the only place an option is named: the constructor takes the
    validated instance (a Component), so no signature repeats an option or its default."""
    component = kind.load(name)
    assert issubclass(component, Component) and issubclass(component.Options, BaseModel)
    parameters = inspect.signature(component).parameters
    for option, info in component.Options.model_fields.items():
        assert info.description, f"{name}: option {option} has no help"
        assert option not in parameters, f"{name}: option {option} is repeated in the constructor"


def test_a_component_built_by_keywords_validates_them_like_the_registry():
    world = SkillWorld(eval_per_skill=2, pool_per_skill=3)
    assert world.options == SkillWorld.Options(eval_per_skill=2, pool_per_skill=3) and len(world.eval_set()) == 2 * len(
        world.skills.leaves()
    )
    with pytest.raises(ConfigError, match="environment 'skillworld': unknown option 'eval_per_skil'"):
        SkillWorld(eval_per_skil=2)
    with pytest.raises(TypeError, match="not both"):
        SkillWorld(SkillWorld.Options(), split_seed=3)


def test_all_thirteen_built_in_policies_are_covered():
    assert len(available_policies()) >= 13 and set(BUILT_IN_ENVIRONMENTS) <= set(available_environments())


# -- options: converted, validated, one line ----------------------------------------------------
def test_command_line_text_becomes_the_declared_type():
    options = key_values(["eval_per_skill=3", "pool_per_skill=2", "split_seed=7"])
    env = get_environment("skillworld", **options)
    assert (env.options.eval_per_skill, env.options.pool_per_skill, env.options.split_seed) == (3, 2, 7)
    assert len(env.eval_set()) == 3 * 8
    policy = get_policy("bandit", **key_values(["algorithm=thompson", "exploration=1e-3", "arms=2"]))
    assert (policy.options.algorithm, policy.options.exploration, policy.options.arms) == ("thompson", 0.001, 2)
    assert get_policy("skill-list", **key_values(["use_teacher=no"])).options.use_teacher is False


def test_key_values_keep_text_unless_it_is_exactly_a_number_or_boolean():
    parsed = key_values(["a=3", "b=0.5", "c=true", "d=yes", "e=007", "f=1.10", "g=[x, y]", "h=", "i=a=b"])
    assert parsed == {
        "a": 3,
        "b": 0.5,
        "c": True,
        "d": "yes",
        "e": "007",
        "f": "1.10",
        "g": ["x", "y"],
        "h": "",
        "i": "a=b",
    }
    # a mapping or list only when written as one: a prompt ending in ": " or starting "- " is text
    assert key_values(["j=JSON please: ", "k={x: 1}", "l=- item"]) == {
        "j": "JSON please: ",
        "k": {"x": 1},
        "l": "- item",
    }
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        key_values(["novalue"])


def test_a_number_typed_for_a_text_option_stays_its_text():
    class Named(BaseModel):
        subset: str = Field(default="main", description="a subset")

    validated = registry.validate_options("environment", "x", Named, key_values(["subset=2023"]))
    assert validated.subset == "2023"


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("skillworld", {"bogus": 1}, ("environment 'skillworld': unknown option 'bogus'; its options: eval_per_skill, "
         "pool_per_skill, split_seed")),
        ("skillworld", {"eval_per_skil": 3}, "unknown option 'eval_per_skil' (did you mean 'eval_per_skill'?)"),
        ("skillworld", {"eval_per_skill": 0}, ("environment 'skillworld': eval_per_skill: Input should be greater "
         "than or equal to 1 (got 0) (options: `teachloop environments show skillworld`)")),
        ("skillworld", {"pool_per_skill": "many"}, "pool_per_skill: Input should be a valid integer"),
    ],
)  # fmt: skip
def test_bad_environment_options_are_one_line_config_errors(name, options, message):
    with pytest.raises(ConfigError) as err:
        get_environment(name, **options)
    assert message in str(err.value) and "\n" not in str(err.value)


# -- plug-ins with and without an Options model ---------------------------------------------------
class TinyEnv:
    """A plug-in environment for these tests (its first paragraph is what `show` prints).

    Second paragraph, not shown."""

    name = "tiny"

    def __init__(self, size: int = 2) -> None:
        if size > 100:
            raise ValueError("size must be at most 100")
        self.skills = SkillWorld(eval_per_skill=1, pool_per_skill=0).skills
        self.size = size

    def train_pool(self) -> list[Example]:
        return []

    def eval_set(self) -> list[Example]:
        return [Example(prompt="q", answer="a", skills=["copy"])] * self.size

    def score(self, example, response):
        from teachloop.environments import exact_attempt

        return exact_attempt(example, response)


class TinyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = Field(default=2, ge=1, description="eval items")


class TypedTinyEnv(Component):
    """The same environment, built from its Options by subclassing Component."""

    kind = "environment"
    name = "tiny"
    Options = TinyOptions
    options: TinyOptions

    def setup(self) -> None:
        self.skills = SkillWorld(eval_per_skill=1, pool_per_skill=0).skills
        self.size = self.options.size

    train_pool = TinyEnv.train_pool
    eval_set = TinyEnv.eval_set
    score = TinyEnv.score


class InProcess(dict):
    """`table[name] = obj` registers `obj` as a policy and an environment in this process."""

    def __setitem__(self, name: str, obj: object) -> None:
        for kind in (POLICIES, ENVIRONMENTS):
            kind.unregister(name)
            kind.register(name, obj)
        super().__setitem__(name, obj)


@pytest.fixture
def registered():
    table = InProcess()
    yield table
    for name in table:
        for kind in (POLICIES, ENVIRONMENTS):
            kind.unregister(name)


def test_a_component_registered_in_process_is_found_like_an_entry_point(registered):
    registered["tiny"] = TinyEnv
    assert "tiny" in available_environments() and len(get_environment("tiny").eval_set()) == 2
    with pytest.raises(PluginError, match="environment 'skillworld' is already registered"):
        ENVIRONMENTS.register("skillworld", TinyEnv)
    with pytest.raises(PluginError, match="unknown environment 'tiyn' \\(did you mean 'tiny'\\?\\)"):
        get_environment("tiyn")


def test_a_plugin_without_options_model_gets_its_options_as_given_and_errors_stay_one_line(registered):
    registered["tiny"] = TinyEnv
    assert len(get_environment("tiny", size=3).eval_set()) == 3
    with pytest.raises(ConfigError, match=r"environment 'tiny' rejected its options \['colour'\]: .*colour"):
        get_environment("tiny", colour="red")
    with pytest.raises(ConfigError, match=r"environment 'tiny' rejected its options \['size'\]: size must be at most"):
        get_environment("tiny", size=500)


def test_a_plugin_options_model_converts_and_validates(registered):
    registered["tiny"] = TypedTinyEnv
    assert get_environment("tiny", size="4").size == 4
    with pytest.raises(ConfigError, match="environment 'tiny': size: Input should be greater than or equal to 1"):
        get_environment("tiny", size=0)
    with pytest.raises(ConfigError, match="environment 'tiny': unknown option 'sise' \\(did you mean 'size'\\?\\)"):
        get_environment("tiny", sise=4)


def test_a_plugin_options_model_is_handed_over_validated(registered):
    """Any factory with an `Options` model gets the validated instance, Component or not."""
    seen = []

    def factory(options: TinyOptions) -> TinyEnv:
        seen.append(options)
        return TinyEnv(options.size)

    factory.Options = TinyOptions  # type: ignore[attr-defined]
    registered["tiny"] = factory
    assert len(get_environment("tiny", size="3").eval_set()) == 3 and seen == [TinyOptions(size=3)]


# -- declared capabilities, checked at load time --------------------------------------------------
class Planner:
    name = "planner"

    def plan(self, state: TeacherState) -> DataPlan:
        return DataPlan(policy=self.name, iteration=state.iteration)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"selct": lambda self, candidates, state: candidates}, "policy 'p' defines 'selct': did you mean 'select'?"),
        ({"needs_pool_attempt": True}, "defines 'needs_pool_attempt': did you mean 'needs_pool_attempts'?"),
        ({"select": lambda self, candidates: candidates}, ("defines select with the wrong signature: teachloop calls "
         "select(candidates, state)")),
        ({"uses_teacher": "yes"}, "policy 'p': uses_teacher must be bool"),
        ({"plan": lambda self: None}, "defines plan with the wrong signature"),
        ({"plan": None}, "policy 'p': plan must be a method plan(state)"),
    ],
)  # fmt: skip
def test_misspelt_or_misshapen_policy_hooks_fail_at_load_time(registered, extra, message):
    registered["p"] = type("P", (Planner,), extra)
    with pytest.raises(PluginError) as err:
        get_policy("p")
    assert message in str(err.value)
    with pytest.raises(PluginError) as err:  # `teachloop policies show` checks the class as a run does
        POLICIES.describe("p")
    assert message in str(err.value)


def test_show_accepts_every_built_in_and_hooks_in_any_form(registered):
    for reg in (POLICIES, ENVIRONMENTS):
        for name in reg.names():
            assert reg.describe(name).startswith(f"{name} ("), name

    class Hooks(Planner):
        needs_pool_attempts = True

        @staticmethod
        def select(candidates, state):
            return candidates

        @property
        def uses_teacher(self):  # known on an instance only
            return False

    registered["p"] = Hooks
    assert "select(candidates, state)" in POLICIES.describe("p")
    get_policy("p")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"make_examples": lambda self, q, a, s: None}, ("environment 'e' defines 'make_examples': did you mean "
         "'make_example'?")),
        ({"generate": lambda self, skill: []}, "defines generate with the wrong signature"),
        ({"answer_tokens": "many"}, "answer_tokens must be int"),
        ({"checks": lambda self, example: True}, "did you mean 'check'?"),
    ],
)  # fmt: skip
def test_misspelt_or_misshapen_environment_hooks_fail_at_load_time(registered, extra, message):
    registered["e"] = type("E", (TinyEnv,), extra)
    with pytest.raises(PluginError) as err:
        get_environment("e")
    assert message in str(err.value)
    with pytest.raises(PluginError) as err:
        ENVIRONMENTS.describe("e")
    assert message in str(err.value)


def test_a_missing_required_member_names_it(registered):
    registered["e"] = type("E", (TinyEnv,), {"score": None})
    with pytest.raises(PluginError, match="environment 'e': score must be a method score\\(example, response\\)"):
        get_environment("e")

    class NoScore:
        name = "e"
        skills = TinyEnv().skills

        def train_pool(self):
            return []

        def eval_set(self):
            return []

    registered["e"] = NoScore
    with pytest.raises(PluginError, match="environment 'e' does not implement score\\(example, response\\)"):
        get_environment("e")


REQUIRED_OPTIONS = {"delta": {"chosen": "vllm:a", "rejected": "vllm:b"}}  # policies that name their models


def test_every_built_in_keeps_its_contract():
    for name in available_policies():
        policy = get_policy(name, **REQUIRED_OPTIONS.get(name, {}))
        registry.check_component(policy, POLICY_CONTRACT, name)  # get_policy checks too; explicit here
    env = get_environment("skillworld", eval_per_skill=1, pool_per_skill=1)
    assert [hook.title for hook in registry.capabilities(env, ENVIRONMENT_CONTRACT)] == [
        "generate(skill, n, rng)",
        "generate(skill, n, rng, difficulty=level)",
        "check(example)",
        "make_example(question, answer, skills)",
        "item_form(skill)",
        "answer_tokens",
        "validation_set()",
        "stop",
    ]
    assert env.generate("reverse", 1, random.Random(0), difficulty=1)[0].meta == {"difficulty": 1}


# -- `show` ---------------------------------------------------------------------------------------------
def test_show_prints_description_options_and_capabilities():
    out = teachloop("environments", "show", "skillworld")
    assert out.returncode == 0, out.stderr
    assert "Procedural string/number tasks with an exact scorer and a generator per skill." in out.stdout
    assert "  eval_per_skill: int = 100\n      evaluation items per skill" in out.stdout
    assert "  generate(skill, n, rng)\n" in out.stdout and "  check(example)\n" in out.stdout
    out = teachloop("policies", "show", "llm2llm")
    assert out.returncode == 0, out.stderr
    assert "instructions: str = 'Write a new example" in out.stdout
    assert "  needs_pool_attempts\n" in out.stdout and "  uses_teacher\n" in out.stdout
    assert "not declared: select(candidates, state), teacher_models(), pool_only" in out.stdout
    assert "capabilities:" in teachloop("policies", "show", "stat-sel").stdout
    assert "options: none\n" in teachloop("policies", "show", "uniform").stdout
    missing = teachloop("environments", "show", "atlantis")
    assert missing.returncode == 2 and "unknown environment 'atlantis'" in missing.stderr


def test_show_says_when_a_plugin_declares_no_options():
    text = registry.describe(ENVIRONMENTS, "tiny", TinyEnv)
    assert (
        text.splitlines()[1] == "  A plug-in environment for these tests (its first paragraph is what `show` prints)."
    )
    assert "options: none declared (no `Options` model)" in text
    assert "capabilities: none of the optional ones" in text


# -- fail before spending -----------------------------------------------------------------------------
@pytest.fixture
def rows_file(tmp_path) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"q{i}", "answer": str(i)}) + "\n" for i in range(10)))
    return path


def test_a_generating_policy_without_generator_or_teacher_fails_in_the_config_check(rows_file):
    config = load_config(overrides={"environment": "jsonl", "environment_options": {"path": str(rows_file)}})
    with pytest.raises(ConfigError, match="policy 'stat-syn' writes new examples, but environment 'jsonl' has no "
                       "generator.*--teacher.*an environment with a generator"):  # fmt: skip
        assemble_run(config, models=False)
    for pool_only in ("none", "stat-sel"):  # they only draw from the seed pool
        assemble_run(config.model_copy(update={"policy": pool_only}), models=False)


def test_run_on_an_environment_without_generator_and_no_teacher_exits_2_before_loading_a_model(rows_file, tmp_path):
    script = (
        "import sys\n"
        "from teachloop.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    loaded = [m for m in ('teachloop.runs.loop.runner', 'teachloop.students.hf.student') if m in sys.modules]\n"
        "    print('exit', exc.code, 'loaded', loaded)\n"
    )
    args = ["run", "--env", "jsonl", "--env-option", f"path={rows_file}", "--out", str(tmp_path / "runs")]
    out = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.stdout.strip().splitlines()[-1] == "exit 2 loaded []", out.stderr[-2000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "has no generator" in errors[0] and "--teacher" in errors[0]
    assert not (tmp_path / "runs").exists()


def test_a_wrapper_forwards_every_capability_it_does_not_withdraw():
    from teachloop.environments.base import (
        ProgrammaticEnvironment,
        RelabelledEnvironment,
        answer_tokens,
        checker_of,
        item_form,
        stop_strings,
    )

    inner = SkillWorld(eval_per_skill=1, pool_per_skill=1)
    tree = SkillTree("discovered")
    tree.add("letters", "letter skills")
    first = inner.eval_set()[0]
    wrapped = RelabelledEnvironment(inner, tree, {first.id: ["letters"]})
    # forwarded: scorer, checker, prompt format, answer length, stop strings, anything else
    assert (answer_tokens(wrapped), stop_strings(wrapped)) == (16, ["\n"])
    assert checker_of(wrapped) is not None and wrapped.options is inner.options and wrapped.name == "skillworld"
    hooks = [hook.title for hook in registry.capabilities(wrapped, ENVIRONMENT_CONTRACT)]
    assert hooks == [
        "check(example)", "make_example(question, answer, skills)", "answer_tokens", "validation_set()", "stop",
    ]  # fmt: skip
    # withdrawn: the inner generator and item forms name skills the discovered tree lacks
    assert not isinstance(wrapped, ProgrammaticEnvironment) and item_form(wrapped, "reverse").question is None
    assert item_form(inner, "reverse").question is not None
    assert wrapped.eval_set()[0].skills == ["letters"] and wrapped.unwrapped is inner
