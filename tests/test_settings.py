"""One definition per setting: the settings dataclasses' fields (realfake.settings.setting) against the workflow's
config schema, the command line and the flags the workflow's rules pass."""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path

import pytest
import yaml
from fixtures import REPOSITORY

from realfake.cli import build_parser
from realfake.cutouts.settings import CutoutSettings
from realfake.errors import RealfakeError
from realfake.evaluation.evaluate import EvaluateSettings
from realfake.evaluation.predict import PredictSettings
from realfake.mock.settings import MockSettings
from realfake.model.views import VIEWS
from realfake.report import ReportSettings
from realfake.settings import (
    command_line,
    default_text,
    flag_of,
    from_config,
    nested_settings,
    option_of,
    setting,
    settings_from_arguments,
)
from realfake.shards.settings import ShardSettings
from realfake.stats.settings import StatisticsSettings
from realfake.training.settings import TrainSettings

HERE = Path(".")
# Each command, its settings dataclass and the values of its settings without a default.
COMMANDS = {
    "mock-survey": (MockSettings, {"out": HERE}),
    "cutouts": (CutoutSettings, {"kind": "real", "dr5_dir": HERE}),
    "shards": (ShardSettings, {"real_dir": HERE, "sim_dir": HERE, "out": HERE}),
    "train": (TrainSettings, {"shards": HERE, "out": HERE}),
    "predict": (PredictSettings, {"shards": HERE, "model": HERE, "out": HERE}),
    "evaluate": (EvaluateSettings, {"shards": HERE, "out": HERE, "model": HERE}),
    "report": (ReportSettings, {"evaluate": HERE, "shards": HERE, "train": HERE, "out": HERE}),
}
# Each config section's stage settings (workflow/rules/checks.smk, section_settings), and the top-level keys that
# are settings of a stage.
SECTIONS = {
    "mock": MockSettings,
    "cutouts": CutoutSettings,
    "shards": ShardSettings,
    "train": TrainSettings,
    "evaluate": StatisticsSettings,
}
TOP_LEVEL = {"bands": CutoutSettings}
# Keys of the evaluate section that are settings of EvaluateSettings itself rather than of its statistics: the evaluate
# workflow passes them (evaluate_arguments in workflow/rules/arguments.smk), not command_line from the section.
EVALUATE_OWN = ("attribution",)
# The flags the cutouts rule gives besides the config's, as the required ones here.
EXTRA_FLAGS = {"cutouts": ["--kind", "real", "--brick", "1238p245", "--out", "x.h5"]}
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def schema() -> dict:
    return yaml.safe_load((REPOSITORY / "workflow" / "schemas" / "config.schema.yaml").read_text())


def default_config() -> dict:
    return yaml.safe_load((REPOSITORY / "config" / "config.yaml").read_text())


def placeholders(command: str) -> dict:
    return COMMANDS[command][1]


def settings_fields(settings_class) -> dict[str, dataclasses.Field]:
    return {field.name: field for field in dataclasses.fields(settings_class) if option_of(field) is not None}


def schema_type(hint) -> list[str]:
    """The JSON Schema type(s) of a setting's annotation."""
    names = []
    for argument in typing.get_args(hint) if isinstance(hint, type(int | None)) else (hint,):
        origin = typing.get_origin(argument) or argument
        names.append(
            {int: "integer", float: "number", str: "string", Path: "string", bool: "boolean", tuple: "array"}.get(
                origin, "string" if dataclasses.is_dataclass(origin) else repr(origin)
            )
        )
        if argument is type(None):
            names[-1] = "null"
    return sorted(names)


def config_form(option, value):
    """A setting's value as the config writes it: a tuple as a list, a ModelConfig by its name."""
    if isinstance(value, tuple):
        return list(value)
    if value is not None and not isinstance(value, (str, int, float, bool)):
        return option.text(value)
    return value


def disagreements(key: str, node: dict, settings_class, name: str) -> list[str]:
    """How the schema of config ``key`` and setting ``name`` of ``settings_class`` differ: type, default, enum
    (of an array: of its items) and bounds."""
    field = settings_fields(settings_class)[name]
    option = option_of(field)
    default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
    hint = typing.get_type_hints(settings_class)[name]
    found = []
    node_type = sorted(node["type"]) if isinstance(node["type"], list) else [node["type"]]
    if node_type != schema_type(hint):
        found.append(
            f"{key}: type {node_type} in the schema, {schema_type(hint)} ({hint}) in {settings_class.__name__}"
        )
    if node.get("default") != config_form(option, default):
        found.append(f"{key}: default {node.get('default')!r} in the schema, {default!r} in {settings_class.__name__}")
    enum = node.get("items", node).get("enum")
    if sorted(enum or ()) != sorted(option.choices or ()):
        found.append(f"{key}: enum {enum} in the schema, choices {option.choices} in {settings_class.__name__}")
    package_bounds = dict(
        zip(BOUNDS, (option.minimum, option.maximum, option.exclusive_minimum, option.exclusive_maximum))
    )
    for bound, value in package_bounds.items():
        if node.get(bound) != value:
            found.append(f"{key}: {bound} {node.get(bound)} in the schema, {value} in {settings_class.__name__}")
    return found


def test_the_schema_agrees_with_the_settings_dataclasses_key_by_key():
    """Type, default, allowed values and bounds of every config key are those of the stage's setting."""
    properties = schema()["properties"]
    found, checked = [], 0
    for section, settings_class in SECTIONS.items():
        for name, node in properties[section]["properties"].items():
            if (section, name) in {("evaluate", "audit"), ("evaluate", "sensitivity_table"), ("evaluate", "folds")}:
                continue  # the workflow's own keys: below
            owner = EvaluateSettings if section == "evaluate" and name in EVALUATE_OWN else settings_class
            assert name in settings_fields(owner), f"{section}.{name} is no setting of {owner}"
            found += disagreements(f"{section}.{name}", node, owner, name)
            checked += 1
    for key, settings_class in TOP_LEVEL.items():
        found += disagreements(key, properties[key], settings_class, key)
    assert not found, "\n".join(found)
    assert checked == sum(len(properties[section]["properties"]) for section in SECTIONS) - 3


def test_the_workflows_own_evaluate_keys_agree_with_the_package():
    evaluate = schema()["properties"]["evaluate"]["properties"]
    # The views the workflow trains for the audit: the restricted ones (`realfake evaluate --audit VIEW=FILE`).
    assert evaluate["audit"]["items"]["enum"] == [view for view in VIEWS if view != "full"]
    assert evaluate["audit"]["default"] == list(EvaluateSettings(shards=HERE, out=HERE, model=HERE).audit) == []
    # The report's table: "" in the config is None there.
    assert evaluate["sensitivity_table"]["default"] == ""
    assert ReportSettings(**placeholders("report")).sensitivity_table is None
    # Cross-fitting: the shards stage's --folds (the workflow passes it when above 1, and trains one model per fold).
    assert not disagreements("evaluate.folds", evaluate["folds"], ShardSettings, "folds")
    assert ShardSettings(**placeholders("shards")).folds == evaluate["folds"]["default"] == 1


def test_every_config_default_is_the_packages_default():
    """One source of defaults: a hand-run `realfake <stage>` with no flags does what the workflow's defaults do."""
    config = default_config()
    for section, settings_class in SECTIONS.items():
        fields = settings_fields(settings_class)
        defaults = settings_class(**_placeholders_of(settings_class))
        for name, value in config[section].items():
            if name in fields:
                assert config_form(option_of(fields[name]), getattr(defaults, name)) == value, f"{section}.{name}"
    assert list(CutoutSettings(**placeholders("cutouts")).bands) == config["bands"]
    evaluate = EvaluateSettings(**placeholders("evaluate"))
    for name in EVALUATE_OWN:
        assert getattr(evaluate, name) == config["evaluate"][name], f"evaluate.{name}"


def _placeholders_of(settings_class) -> dict:
    return next((values for cls, values in COMMANDS.values() if cls is settings_class), {})


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_setting_has_help_and_a_flag_whose_help_shows_its_default(command, capsys):
    settings_class, _ = COMMANDS[command]
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    classes = [settings_class, *nested_settings(settings_class).values()]
    for cls in classes:
        for field in dataclasses.fields(cls):
            option = option_of(field)
            if field.name in nested_settings(cls):
                continue
            assert option is not None and option.help, f"{cls.__name__}.{field.name} has no help"
            if not option.command_line:
                continue
            flag = flag_of(field.name, option)
            assert f"{flag} " in text or f"{flag}," in text, f"{command} has no {flag}"
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                continue
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
            assert f"default: {default_text(option, default)}" in text, f"{command} {flag}: no default shown"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_command_with_only_its_required_flags_gets_the_dataclass_defaults(command):
    settings_class, required = COMMANDS[command]
    arguments = [command]
    for name, value in required.items():
        arguments += [flag_of(name, option_of(settings_fields(settings_class)[name])), str(value)]
    if command == "cutouts":
        arguments += ["--brick", "1238p245", "--out", "x.h5"]
    parsed = build_parser().parse_args(arguments)
    assert settings_from_arguments(settings_class, parsed) == settings_class(**required)


CONFIGS = [
    {},
    {
        "mock": {"mismatch": "psf", "strength": 2, "bricks": 3, "release": "dr10"},
        "cutouts": {"select_fakes": True, "pad_edges": True, "real_source": "rsdir", "real_exclusion_radius": 0},
        "shards": {"match": [], "balance": "none", "dtype": "float16", "test_fraction": 0.5},
        "train": {"model": "lenet", "augment": False, "deterministic": False, "learning_rate": 1},
        "evaluate": {"correction": "bh", "tolerance": 0},
    },
]


@pytest.mark.parametrize("overrides", CONFIGS)
def test_the_flags_the_rules_pass_give_the_command_the_configs_settings(overrides):
    """realfake.settings.command_line (arguments.smk) and the command line agree: the flags made of a config
    section, parsed by `realfake <stage>`, give the settings the config values give through from_config."""
    config = default_config()
    for section, values in overrides.items():
        config[section].update(values)
    for section, settings_class in SECTIONS.items():
        command = "mock-survey" if section == "mock" else section
        owner, required = COMMANDS[command]
        values = {name: value for name, value in config[section].items() if name in settings_fields(settings_class)}
        if section == "cutouts":
            values = {"bands": config["bands"], "obiwan_dir": ".", **values}
        flags = command_line(settings_class, values)
        required_flags = list(EXTRA_FLAGS.get(section, []))
        for name, value in required.items():
            if name != "kind":
                required_flags += [flag_of(name, option_of(settings_fields(owner)[name])), str(value)]
        parsed = build_parser().parse_args([command, *required_flags, *flags])
        from_flags = settings_from_arguments(owner, parsed)
        expected = {name: from_config(settings_class, name, value) for name, value in values.items()}
        if settings_class is owner:
            expected_settings = owner(**{**required, **expected})
        else:  # evaluate: the statistics are nested in EvaluateSettings
            expected_settings = owner(**required, statistics=settings_class(**expected))
        assert from_flags == expected_settings, section


@pytest.mark.parametrize("attribution", [True, False])
def test_the_evaluate_rule_passes_evaluate_attribution_as_the_commands_flag(attribution):
    """arguments.smk writes the flag of evaluate.attribution itself (the section's other keys are the statistics'):
    it must be the flag EvaluateSettings declares, and give `realfake evaluate` the config's value."""
    flags = command_line(EvaluateSettings, {"attribution": attribution})
    assert flags == (["--attribution"] if attribution else ["--no-attribution"])
    arguments = (REPOSITORY / "workflow" / "rules" / "arguments.smk").read_text()
    assert f'"{flags[0]}"' in arguments
    required = ["--shards", "s", "--out", "o", "--model", "m"]
    parsed = build_parser().parse_args(["evaluate", *required, *flags])
    assert settings_from_arguments(EvaluateSettings, parsed).attribution is attribution
    assert settings_from_arguments(EvaluateSettings, build_parser().parse_args(["evaluate", *required])).attribution


def bound_cases():
    """(settings class, setting, value just past a bound, value at or inside it) for every declared bound."""
    for command, (settings_class, _) in COMMANDS.items():
        for cls in [settings_class, *nested_settings(settings_class).values()]:
            for name, field in settings_fields(cls).items():
                option = option_of(field)
                for bound, outside, inside in (
                    (option.minimum, -1, 0),
                    (option.exclusive_minimum, 0, 1),
                    (option.maximum, 1, 0),
                    (option.exclusive_maximum, 0, -1),
                ):
                    if bound is not None:
                        step = 1 if typing.get_type_hints(cls)[name] is int else 1e-3
                        yield pytest.param(cls, name, bound + outside * step, bound + inside * step,
                                           id=f"{cls.__name__}.{name}-{bound}")  # fmt: skip


def _build(cls, **values):
    return cls(**{**_placeholders_of(cls), **values})


@pytest.mark.parametrize(("settings_class", "name", "outside", "inside"), list(bound_cases()))
def test_every_declared_bound_is_what_the_dataclass_refuses(settings_class, name, outside, inside):
    _build(settings_class, **{name: inside})
    with pytest.raises(RealfakeError, match=rf"\b{name.replace('_', '.')}\b.* must be .*, got {outside}"):
        _build(settings_class, **{name: outside})


def test_a_setting_outside_its_choices_or_not_a_finite_number_is_refused_naming_it():
    with pytest.raises(RealfakeError, match="^balance must be one of subsample, none, got 'some'$"):
        _build(ShardSettings, balance="some")
    with pytest.raises(RealfakeError, match="^view must be one of full, image_only, .*, got 'sky'$"):
        _build(TrainSettings, view="sky")
    with pytest.raises(RealfakeError, match="^tolerance must be a finite number, got inf$"):
        StatisticsSettings(tolerance=math.inf)
    with pytest.raises(RealfakeError, match="^mock setting size must be between 128 and 4096 pixels, got 100$"):
        _build(MockSettings, size=100)
    with pytest.raises(RealfakeError, match="^mock setting release must be one of dr5, dr9, dr10, got 'dr8'$"):
        _build(MockSettings, release="dr8")
    # A number with a unit says what it must be, whatever is wrong with it.
    with pytest.raises(RealfakeError, match="^startup_timeout must be a positive number of seconds, got nan$"):
        _build(TrainSettings, startup_timeout=math.nan)


def test_every_reference_to_realfake_code_in_a_settings_help_resolves():
    from test_docs import REFERENCE, unresolved

    for settings_class, _ in COMMANDS.values():
        for cls in [settings_class, *nested_settings(settings_class).values()]:
            for name, field in settings_fields(cls).items():
                for reference in REFERENCE.findall(option_of(field).help):
                    assert unresolved(reference) is None, f"{cls.__name__}.{name}: {unresolved(reference)}"


def test_a_settings_dataclass_declares_its_flags_once():
    @dataclasses.dataclass(frozen=True)
    class Example:
        count: int = setting(3, help="how many", minimum=1, metavar="N")
        names: tuple[str, ...] = setting(("a",), help="which", choices=("a", "b"), parse=tuple, text="".join)
        fast: bool = setting(False, help="hurry")
        careful: bool = setting(True, help="check")

    assert command_line(Example, {"count": 2, "names": ["a", "b"], "fast": True, "careful": False}) == [
        "--count", "2", "--names", "ab", "--fast", "--no-careful",
    ]  # fmt: skip
    assert command_line(Example, {"fast": False, "careful": True}) == ["--careful"]
    with pytest.raises(RealfakeError, match="Example has no setting 'speed'"):
        command_line(Example, {"speed": 1})


def test_a_command_imports_only_its_own_stage(tmp_path):
    """`realfake mock-survey` builds only its own flags: no other stage's settings module (evaluate's pulls in
    scipy and sklearn, train's TensorFlow) is imported by a job, 2.6 s of every mock and cutouts job before."""
    import subprocess
    import sys

    program = (
        "import sys\n"
        "from realfake.cli import main\n"
        f"assert main(['mock-survey', '--out', {str(tmp_path / 'mock')!r}, '--table-only', '--bricks', '1']) == 0\n"
        "heavy = sorted(name for name in sys.modules if name.startswith(('realfake.evaluation', 'realfake.training', "
        "'realfake.report', 'realfake.cutouts', 'realfake.shards', 'tensorflow', 'sklearn')))\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout
