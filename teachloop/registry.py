"""The one plug-in registry: every pluggable kind (policy, environment, engine, teacher
backend, student, eval backend, tracker) is listed once in `KINDS` (its CLI word, entry-point
group, config key, registry and base class) and is a `Registry` filled from its entry-point
group; built-ins register through the same groups as third-party plug-ins (see
pyproject.toml), so a plug-in package is a first-class citizen.

A component declares its options once, as a pydantic model in the class attribute `Options`
(type, default, description). `Registry.build` validates the user's options with it
(converting command-line text to the declared types) and calls the factory with the validated
instance; subclassing `Component` turns that instance into the component's `options`. A
`Contract` lists a kind's required members and its optional hooks (each declared by a
runtime-checkable Protocol); the registry checks it when it builds, so a hook that is misspelt
or has the wrong signature is a one-line error before the run starts, not a silently
skipped feature.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from teachloop.errors import ConfigError, PluginError, TeachloopError, UnknownName

# a name this close to a hook's (difflib ratio) is taken for a misspelling of it
MISSPELLING_CUTOFF = 0.8


class NoOptions(BaseModel):
    """A component that takes no options."""

    model_config = ConfigDict(extra="forbid")


class Component:
    """Base class of a registered component built from its `Options`.

    `Cls(options)` takes a validated `Options` instance (what the registry passes);
    `Cls(key=value, ...)` validates the keywords first, with the same one-line errors. Either
    way the instance is `self.options`, and work that depends on it goes in `setup()`, so no
    constructor repeats the options' names or defaults."""

    kind: ClassVar[str] = "component"
    Options: ClassVar[type[BaseModel]] = NoOptions

    def __init__(self, options: BaseModel | None = None, /, **values: Any) -> None:
        cls = type(self)
        if options is None:
            options = validate_options(cls.kind, _component_name(cls), cls.Options, values)
        elif values:
            raise TypeError(f"{cls.__name__}: pass an Options instance or keyword options, not both")
        elif not isinstance(options, cls.Options):
            raise TypeError(f"{cls.__name__} takes a {cls.Options.__name__}, got {type(options).__name__}")
        self.options = options
        self.setup()

    def setup(self) -> None:
        """What the component computes from `self.options` once (read files, build state)."""


def _component_name(cls: type) -> str:
    name = inspect.getattr_static(cls, "name", None)
    return name if isinstance(name, str) else cls.__name__


@dataclass(frozen=True)
class Kind:
    """One pluggable kind, as a user and a plug-in author meet it.

    `command`: the CLI word (`teachloop <command> list | show NAME`); `group`: the entry-point
    group its components register under; `config_key`: where a run names one (and its flag);
    `registry` and `base`: where its `Registry` and the class a component subclasses live
    (`module:attribute`, imported only when asked for: this table sits below every kind);
    `reserved`: names a run takes that no entry point registers (`auto`, `none`)."""

    name: str
    command: str
    summary: str
    group: str
    config_key: str
    registry: str
    base: str
    reserved: tuple[str, ...] = ()

    def load_registry(self) -> Registry:
        registry: Registry = _import(self.registry)
        return registry

    def load_base(self) -> type:
        base: type = _import(self.base)
        return base


def _import(where: str) -> Any:
    import importlib

    module, attribute = where.split(":")
    return getattr(importlib.import_module(module), attribute)


KINDS: tuple[Kind, ...] = (
    Kind(
        "policy", "policies", "Data-generation policies", "teachloop.policies", "policy (--policy)",
        "teachloop.agents.policies:POLICIES", "teachloop.agents.policies.base:BasePolicy",
    ),
    Kind(
        "environment", "environments", "Environments", "teachloop.environments", "environment (--env)",
        "teachloop.environments:ENVIRONMENTS", "teachloop.environments.base:BaseEnvironment",
    ),
    Kind(
        "engine", "engines", "Data-generation engines", "teachloop.engines", "engine (--engine)",
        "teachloop.agents.engines:ENGINES", "teachloop.agents.engines.base:BaseEngine", reserved=("auto",),
    ),
    Kind(
        "teacher backend", "backends", "Teacher backends", "teachloop.teacher_backends",
        "teacher.backend (--teacher BACKEND:MODEL)", "teachloop.agents.teacher:TEACHER_BACKENDS",
        "teachloop.agents.teacher.backends.base:Backend",
    ),
    Kind(
        "student", "students", "Students (the model classes a run trains)", "teachloop.students",
        "student_backend (--student-backend)", "teachloop.students.registry:STUDENTS",
        "teachloop.students.registry:BaseStudent",
    ),
    Kind(
        "eval backend", "eval-backends", "Student evaluation backends", "teachloop.eval_backends",
        "eval_backend (--eval-backend)", "teachloop.students.eval_backends:EVAL_BACKENDS",
        "teachloop.students.eval_backends:BaseEvalBackend", reserved=("auto",),
    ),
    Kind(
        "tracker", "trackers", "Experiment trackers", "teachloop.trackers", "tracking (--tracking)",
        "teachloop.runs.loop.tracking:TRACKERS", "teachloop.runs.loop.tracking:BaseTracker", reserved=("none",),
    ),
)  # fmt: skip
KIND = {kind.name: kind for kind in KINDS}


@dataclass(frozen=True)
class Registry:
    """The components of one kind, found by name in the entry-point group `group`.

    `command` is the CLI word for the kind (`teachloop <command> list | show NAME`);
    `option_flag` says how a user passes options to one; `contract`, when given, is checked on
    every component the registry builds; `settings` says where a kind that declares no
    `Options` is configured."""

    kind: str
    group: str
    command: str
    option_flag: str = ""
    contract: Contract | None = None
    settings: str = ""  # where a kind without `Options` models is configured instead
    notes: Callable[[Any], list[str]] | None = None  # what `show` says of a component besides its options

    def __post_init__(self) -> None:
        _SHOW_COMMAND[self.kind] = self.command

    @classmethod
    def of(cls, kind: str, **settings: Any) -> Registry:
        """The registry of a kind in `KINDS` (its group and CLI word from there)."""
        entry = KIND[kind]
        return cls(kind=kind, group=entry.group, command=entry.command, **settings)

    @property
    def reserved(self) -> tuple[str, ...]:
        """Names a run takes for this kind that no entry point registers (`auto`, `none`)."""
        entry = KIND.get(self.kind)
        return entry.reserved if entry is not None else ()

    def check_name(self, name: str) -> None:
        """An `UnknownName` error (one line, with a "did you mean" and the names available)
        unless `name` is registered or reserved."""
        if name in self.reserved or name in _IN_PROCESS.get(self.group, {}):
            return
        eps = self.entry_points()
        if not eps:
            raise PluginError(
                f"no {self.kind} is registered at all: install teachloop (pip install -e .) so its entry points exist"
            )
        if name in eps:
            return
        known = [*self.reserved, *self.names()]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownName(f"unknown {self.kind} {name!r}{hint}; available: {', '.join(known)}")

    def entry_points(self) -> dict[str, EntryPoint]:
        return {ep.name: ep for ep in entry_points(group=self.group)}

    def register(self, name: str, factory: Any) -> None:
        """Register `factory` under `name` in this process only (a notebook, a test, a script),
        beside the entry points; a name an entry point already has is refused."""
        if name in self.entry_points() or name in _IN_PROCESS.get(self.group, {}):
            raise PluginError(f"{self.kind} {name!r} is already registered")
        _IN_PROCESS.setdefault(self.group, {})[name] = factory

    def unregister(self, name: str) -> None:
        """Forget a component `register` added (entry points stay)."""
        _IN_PROCESS.get(self.group, {}).pop(name, None)

    def names(self) -> list[str]:
        return sorted(set(self.entry_points()) | set(_IN_PROCESS.get(self.group, {})))

    def load(self, name: str) -> Any:
        """The object registered under `name` (a class or factory)."""
        in_process = _IN_PROCESS.get(self.group, {})
        if name in in_process:
            return in_process[name]
        if name in self.reserved:
            raise PluginError(f"{self.kind} {name!r} is resolved by the run, not loaded")
        self.check_name(name)
        try:
            return self.entry_points()[name].load()
        except Exception as exc:  # a broken plug-in must not look like a teachloop bug
            raise PluginError(f"{self.kind} {name!r} is registered but failed to load: {exc}") from exc

    def build(self, name: str, options: Mapping[str, Any] | None = None, **context: Any) -> Any:
        """The component registered as `name`, built from the user's `options` (validated by
        its `Options`) and the caller's `context` keywords, checked against the contract."""
        factory = self.load(name)
        component = build(self.kind, name, factory, dict(options or {}), context)
        if self.contract is not None:
            check_component(component, self.contract, name)
        return component

    def describe(self, name: str) -> str:
        return describe(self, name, self.load(name))


# -- what a component needs installed ---------------------------------------------------------
@dataclass(frozen=True)
class Requires:
    """The modules a component imports beyond teachloop's own dependencies, and the command
    that installs them; declared as the class attribute `requires`, checked before a run."""

    modules: tuple[str, ...]
    install: str
    what: str = ""  # how the error names them (default: the modules)

    @classmethod
    def package(cls, name: str, extra: str = "") -> Requires:
        """One pip package that is also a module, optionally in a teachloop extra."""
        hint = f" (or pip install 'teachloop[{extra}]')" if extra else ""
        return cls((name,), f"pip install {name}{hint}", what=f"the {name} package")

    def check(self, label: str) -> None:
        """A one-line ConfigError, `<label> needs <what>: <install>`, when a module is missing."""
        if not all(importlib.util.find_spec(module) for module in self.modules):
            raise ConfigError(f"{label} needs {self.what or ' and '.join(self.modules)}: {self.install}")


def check_requires(factory: Any, label: str) -> None:
    """`factory.requires` (a Requires, or None for nothing beyond teachloop) is installed."""
    requires = getattr(factory, "requires", None)
    if requires is not None:
        requires.check(label)


# -- options ---------------------------------------------------------------------------------
def options_model(factory: Any, kind: str, name: str) -> type[BaseModel] | None:
    """The pydantic model a component declares as `Options`, or None when it declares none."""
    model = inspect.getattr_static(factory, "Options", None)
    if model is None:
        return None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise PluginError(f"{kind} {name!r}: `Options` must be a pydantic BaseModel subclass, got {model!r}")
    return model


def _option_names(model: type[BaseModel]) -> list[str]:
    return [info.alias or key for key, info in model.model_fields.items()]


def validate_options(kind: str, name: str, model: type[BaseModel], options: dict[str, Any]) -> BaseModel:
    """The user's options as the model's instance; every problem as one ConfigError line."""
    known = _option_names(model)
    unknown = [key for key in options if key not in known]
    if unknown:
        raise ConfigError(f"{kind} {name!r}: " + "; ".join(_unknown(key, known) for key in unknown) + _listed(known))
    try:
        return model.model_validate(options)
    except ValidationError as first:
        retry = _as_text_where_text_is_wanted(options, first)
        if retry is None:
            raise ConfigError(_options_error(kind, name, first)) from None
    try:
        return model.model_validate(retry)
    except ValidationError as exc:
        raise ConfigError(_options_error(kind, name, exc)) from None


def _as_text_where_text_is_wanted(options: dict[str, Any], exc: ValidationError) -> dict[str, Any] | None:
    """A command-line value that reads as a number or boolean (`subset=2023`) goes back to its
    text where the option is a string; None when there is nothing to convert."""
    keys = {
        str(err["loc"][0])
        for err in exc.errors()
        if err["type"] == "string_type" and err["loc"] and isinstance(options.get(str(err["loc"][0])), int | float)
    }
    if not keys:
        return None
    return {key: json.dumps(value) if key in keys else value for key, value in options.items()}


def _unknown(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f"unknown option {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _listed(known: list[str]) -> str:
    return f"; its options: {', '.join(known)}" if known else "; it takes no options"


def _options_error(kind: str, name: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        got = f" (got {value!r})" if where and not isinstance(value, dict | list | BaseModel) else ""
        parts.append(f"{where}: {message}{got}" if where else message)
    return f"{kind} {name!r}: " + "; ".join(parts) + _see(kind, name)


def _see(kind: str, name: str) -> str:
    command = _SHOW_COMMAND.get(kind)
    return f" (options: `teachloop {command} show {name}`)" if command else ""


# entry-point group -> name -> factory, for components registered in this process
_IN_PROCESS: dict[str, dict[str, Any]] = {}

# kind -> its CLI word, filled as registries are made (an error can then say where to look)
_SHOW_COMMAND: dict[str, str] = {}


def build(kind: str, name: str, factory: Any, options: dict[str, Any], context: dict[str, Any] | None = None) -> Any:
    """The component `factory` makes from the user's `options` and the caller's `context`.

    With an `Options` model the options are validated first and the factory gets the
    validated instance as its one positional argument; without one they are passed as keyword
    arguments, as given. A ValueError or TypeError from the factory becomes a one-line
    ConfigError."""
    context = context or {}
    model = options_model(factory, kind, name)
    try:
        if model is not None:
            return factory(validate_options(kind, name, model, options), **context)
        return factory(**options, **context)
    except TeachloopError:
        raise
    except ValidationError as exc:  # a constructor validating further itself
        raise ConfigError(_options_error(kind, name, exc)) from None
    except (TypeError, ValueError) as exc:
        given = f" {sorted(options)}" if options else ""
        raise ConfigError(f"{kind} {name!r} rejected its options{given}: {_one_line(exc)}{_see(kind, name)}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def describe_options(model: type[BaseModel] | None) -> list[tuple[str, str, str, str]]:
    """(name, type, default, help) per option, for `teachloop ... show`."""
    if model is None:
        return []
    rows = []
    for key, info in model.model_fields.items():
        default = "required" if info.is_required() else repr(info.get_default(call_default_factory=True))
        rows.append((info.alias or key, _type_name(info.annotation), default, info.description or ""))
    return rows


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("pathlib.", "").replace("pydantic.types.", "")


def summary(obj: Any) -> str:
    """The first paragraph of a component's docstring (its module's when the class has none)."""
    doc = inspect.getdoc(obj) if obj.__doc__ else None
    if not doc:
        doc = inspect.getdoc(inspect.getmodule(obj)) or ""
    return " ".join(doc.split("\n\n", 1)[0].split())


# -- the contract: required members and optional hooks -------------------------------------
@dataclass(frozen=True)
class Hook:
    """A member of a component: a method (`params`: the positional arguments teachloop
    passes) or an attribute (`value_type`). `keyword`: the capability is a method that also
    takes this keyword argument (e.g. `generate(..., difficulty=)`)."""

    member: str
    help: str
    protocol: type | None = None
    params: tuple[str, ...] | None = None
    value_type: type | tuple[type, ...] | None = None
    keyword: str | None = None
    label: str = ""

    @property
    def is_method(self) -> bool:
        return self.params is not None

    @property
    def title(self) -> str:
        if self.label:
            return self.label
        return f"{self.member}({', '.join(self.params)})" if self.params is not None else self.member


@dataclass(frozen=True)
class Contract:
    kind: str
    required: tuple[Hook, ...]
    optional: tuple[Hook, ...] = field(default=())

    def members(self) -> set[str]:
        return {hook.member for hook in (*self.required, *self.optional)} | {"Options"}


def check_component(obj: Any, contract: Contract, name: str) -> None:
    """Required members present with the right shape; optional hooks, where defined, with the
    right shape; no public member whose name is a near miss of a hook's (`selct`, `make_examples`)."""
    kind = contract.kind
    for hook in contract.required:
        if not _has(obj, hook.member):
            raise PluginError(f"{kind} {name!r} does not implement {hook.title}: {hook.help}")
        _check_shape(obj, hook, kind, name)
    for hook in contract.optional:
        if hook.keyword is None and _has(obj, hook.member):
            _check_shape(obj, hook, kind, name)
    _check_spelling(obj, contract, name)


def check_component_class(cls: type, contract: Contract, name: str) -> None:
    """What `check_component` can tell from a class before it is built (`teachloop <kind> show`
    fails where a run would): its methods present and taking what teachloop passes (after
    `self`), its class attributes' types, no near-miss hook names. What an instance sets in
    `__init__` is checked when it is built."""
    kind = contract.kind
    for hook in contract.required:
        if hook.is_method and not (_has(cls, hook.member) or _annotated(cls, hook.member)):
            raise PluginError(f"{kind} {name!r} does not implement {hook.title}: {hook.help}")
    for hook in (*contract.required, *contract.optional):
        if hook.keyword is not None or not _has(cls, hook.member):
            continue
        raw = inspect.getattr_static(cls, hook.member)
        if isinstance(raw, property | functools.cached_property):
            continue  # its value exists on an instance only
        if not hook.is_method:
            if not hasattr(type(raw), "__get__"):  # a plain class attribute, not a descriptor
                _check_shape(cls, hook, kind, name)
            continue
        assert hook.params is not None
        plain_function = inspect.isfunction(raw)  # called on an instance: `self` comes first
        value = raw if plain_function else getattr(cls, hook.member)
        if not callable(value):
            raise PluginError(f"{kind} {name!r}: {hook.member} must be a method {hook.title}, got {value!r}")
        if not _accepts(value, len(hook.params) + plain_function):
            raise PluginError(
                f"{kind} {name!r} defines {hook.member} with the wrong signature: teachloop calls {hook.title}"
            )
    _check_spelling(cls, contract, name)


def _has(obj: Any, member: str) -> bool:
    try:
        inspect.getattr_static(obj, member)
    except AttributeError:
        return False
    return True


def _check_shape(obj: Any, hook: Hook, kind: str, name: str) -> None:
    value = getattr(obj, hook.member)
    if hook.is_method:
        assert hook.params is not None
        if not callable(value):
            raise PluginError(f"{kind} {name!r}: {hook.member} must be a method {hook.title}, got {value!r}")
        if not _accepts(value, len(hook.params)):
            raise PluginError(
                f"{kind} {name!r} defines {hook.member} with the wrong signature: teachloop calls {hook.title}"
            )
    elif hook.value_type is not None:
        wrong_bool = isinstance(value, bool) and hook.value_type is int
        if wrong_bool or not isinstance(value, hook.value_type):
            types = hook.value_type if isinstance(hook.value_type, tuple) else (hook.value_type,)
            want = " or ".join(t.__name__ for t in types)
            raise PluginError(f"{kind} {name!r}: {hook.member} must be {want}, got {value!r}")


def _accepts(method: Any, n_positional: int) -> bool:
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):  # no introspectable signature: trust it
        return True
    try:
        signature.bind(*[object()] * n_positional)
    except TypeError:
        return False
    return True


def takes_keyword(method: Any, keyword: str) -> bool:
    """Whether `method` takes the keyword argument `keyword` (by name or through **kwargs)."""
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):  # no introspectable signature: assume the plain protocol
        return False
    return any(p.name == keyword or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _check_spelling(obj: Any, contract: Contract, name: str) -> None:
    known = contract.members()
    model = inspect.getattr_static(obj if isinstance(obj, type) else type(obj), "Options", None)
    declared = set(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else set()
    methods = [h.member for h in (*contract.required, *contract.optional) if h.is_method]
    attributes = [h.member for h in (*contract.required, *contract.optional) if not h.is_method]
    for member in dir(obj):
        if member.startswith("_") or member in known or member in declared:
            continue
        candidates = methods if _is_method(obj, member) else attributes
        close = difflib.get_close_matches(member, candidates, n=1, cutoff=MISSPELLING_CUTOFF)
        if close and close[0].lower() != member.lower():
            raise PluginError(f"{contract.kind} {name!r} defines {member!r}: did you mean {close[0]!r}?")


def _is_method(obj: Any, member: str) -> bool:
    try:
        raw = inspect.getattr_static(obj, member)
    except AttributeError:
        return False
    if isinstance(raw, property):
        return False
    return callable(raw) or isinstance(raw, staticmethod | classmethod)


def capabilities(obj: Any, contract: Contract) -> list[Hook]:
    """The optional hooks `obj` (a component or its class) defines. On a class, an attribute
    its instances set in `__init__` counts when the class annotates it (`answer_tokens: int`)."""
    found = []
    for hook in contract.optional:
        if not (_has(obj, hook.member) or _annotated(obj, hook.member)):
            continue
        if hook.value_type is bool and getattr(obj, hook.member, True) is not True:
            continue  # a flag declared off
        if hook.keyword is not None and not takes_keyword(getattr(obj, hook.member, None), hook.keyword):
            continue
        found.append(hook)
    return found


def _annotated(obj: Any, member: str) -> bool:
    cls = obj if isinstance(obj, type) else type(obj)
    return any(member in getattr(klass, "__annotations__", {}) for klass in cls.__mro__)


# -- `teachloop <kind> show NAME` -----------------------------------------------------------
def describe(registry: Registry, name: str, factory: Any) -> str:
    """A component's description, options (type, default, help) and declared capabilities."""
    kind = registry.kind
    if registry.contract is not None and isinstance(factory, type):
        check_component_class(factory, registry.contract, name)  # `show` refuses what a run would refuse
    lines = [f"{name} ({kind})", f"  {summary(factory) or '(no description)'}", ""]
    model = options_model(factory, kind, name)
    if model is None and registry.settings:
        lines.append(f"settings: {registry.settings}")
    elif model is None:
        lines.append("options: none declared (no `Options` model): options are passed to it unchecked")
    elif not model.model_fields:
        lines.append("options: none")
    else:
        lines.append(f"options ({registry.option_flag}):" if registry.option_flag else "options:")
        for option, type_name, default, help_text in describe_options(model):
            lines.append(f"  {option}: {type_name} = {default}")
            if help_text:
                lines.append(f"      {help_text}")
    if registry.notes is not None:
        lines += ["", *registry.notes(factory)]
    contract = registry.contract
    if contract is None or not contract.optional:
        return "\n".join(lines)
    lines.append("")
    if not isinstance(factory, type):
        lines.append("capabilities: known once built (the entry point is a factory function, not a class)")
        return "\n".join(lines)
    found = capabilities(factory, contract)
    lines.append("capabilities:" if found else "capabilities: none of the optional ones")
    for hook in found:
        lines += [f"  {hook.title}", f"      {hook.help}"]
    missing = [hook.title for hook in contract.optional if hook not in found]
    if missing:
        lines.append(f"not declared: {', '.join(missing)}")
    return "\n".join(lines)
