"""The config checked before any job runs: every stage's settings through its own
dataclass (so a value a job would refuse is refused here, naming the key), the
input trees, and enough bricks for the split. Included after common.smk, whose
helpers (bands, bricks, uses_mock_survey) it uses.
"""

import dataclasses
import functools
from pathlib import Path

from snakemake.exceptions import WorkflowError

from realfake.errors import RealfakeError


def check_stage_settings():
    """Raise WorkflowError, naming the config keys, for settings that pass the schema
    but that a stage's job would refuse: a cutouts selection that cuts on bands the
    config leaves out, a mock of stars (mock.model stars) whose reals the cutouts
    selection would not pick as its fakes are picked (psf_stars), a shards matching
    column the cutouts catalogs of these bands do not have, and whatever each stage's settings dataclass refuses (NaN, a
    strength out of its mismatch's range, matching on a text column: see
    dataclass_problems). Checked before any job runs, not at the stage that fails."""
    from realfake.cutouts import catalog_columns
    from realfake.mock.settings import MODEL_SELECTION
    from realfake.survey.selection import SELECTION_BANDS, missing_selection_bands

    problems = []
    selection = config["cutouts"]["selection"]
    missing = missing_selection_bands(selection, bands())
    if missing:
        problems.append(
            f"config cutouts.selection {selection} cuts on bands "
            f"{', '.join(SELECTION_BANDS[selection])}, but config bands is "
            f"[{', '.join(bands())}]: add {', '.join(missing)} to bands, or set "
            f"cutouts.selection to all_primary"
        )
    model = config["mock"]["model"]
    if uses_mock_survey() and model == "stars" and selection != MODEL_SELECTION[model]:
        problems.append(
            f"config mock.model stars injects the stars of selection {MODEL_SELECTION[model]}, "
            f"but config cutouts.selection is {selection}: set cutouts.selection to "
            f"{MODEL_SELECTION[model]}, so that the reals are picked as the fakes are"
        )
    columns = catalog_columns(bands())
    for name in config["shards"]["match"]:
        if name not in columns:
            magnitudes = [
                column for column in columns if column.startswith("measured_mag_dered_")
            ]
            problems.append(
                f"config shards.match names {name!r}, which the cutouts catalogs of bands "
                f"[{', '.join(bands())}] do not have: set shards.match to columns "
                f"they have (e.g. [{magnitudes[0]}]) or to [], or add the band to bands"
            )
    problems += mock_plain_run_problems()
    # The bands are named above when they do not fit the selection: left at their
    # default below, so that the cutouts settings do not name them twice.
    problems += dataclass_problems(left_out=["bands"] if missing else [])
    if problems:
        raise WorkflowError("\n".join(problems))


def mock_plain_run_problems():
    """With the mock as input, what does not fit between mock.plain_run and the
    reals of cutouts.real_source run, one line per problem naming the keys: run
    cuts the reals from the mock's plain run, so it needs mock.plain_run true; and
    cutouts.real_run must name the plain run whenever the mock writes one, or its
    empty injected catalog would make it a run of fakes (with none). With another
    real source the same survey serves both arms of the same-image control.
    (real_source run without mock.injector legacysim, and mock.plain_run without
    it, are the dataclasses' to refuse.)"""
    if not uses_mock_survey():
        return []
    real_source = config["cutouts"]["real_source"]
    real_run = config["cutouts"]["real_run"]
    plain_run = config["mock"]["plain_run"]
    problems = []
    if real_source == "run" and not plain_run:
        problems.append(
            "config cutouts.real_source run cuts the reals from the mock's plain "
            f"legacypipe run {MOCK_PLAIN_RUN}, which mock.plain_run false does not "
            "write: set mock.plain_run true (with mock.injector legacysim)"
        )
    if (real_source == "run" or plain_run) and real_run != MOCK_PLAIN_RUN:
        problems.append(
            f"config cutouts.real_run {'null' if real_run is None else real_run}: the "
            f"mock's plain run is {MOCK_PLAIN_RUN} (mock.plain_run), a run without "
            "fakes that the fakes' cutouts must leave out; set cutouts.real_run to it"
        )
    return problems


def section_settings():
    """{config section: the settings dataclass of its stage's `realfake` command}.
    The command builds it from the flags arguments.smk makes of the section, and
    planning checks the section with it (dataclass_problems). Imports no
    TensorFlow: planning stays quick."""
    from realfake.cutouts.settings import CutoutSettings
    from realfake.mock.settings import MockSettings
    from realfake.shards.settings import ShardSettings
    from realfake.stats.settings import StatisticsSettings
    from realfake.training.settings import TrainSettings

    return {
        "mock": MockSettings,
        "cutouts": CutoutSettings,
        "shards": ShardSettings,
        "train": TrainSettings,
        "evaluate": StatisticsSettings,
    }


def stage_settings(section):
    """{setting: config value} of the settings of a config section, in the order of
    the fields of its settings dataclass (whatever order the config files give), so
    that a stage's command does not change with it. Keys that are not settings of
    the stage (evaluate.audit, evaluate.sensitivity_table) are the workflow's own."""
    fields = dataclasses.fields(section_settings()[section])
    return {
        field.name: config[section][field.name]
        for field in fields
        if field.name in config[section]
    }


def config_settings(section):
    """{config key: (setting, value)} of the settings a section's stage takes from
    the config, in the order of its dataclass's fields: the section's keys and, for
    cutouts, the top-level bands and the injector (input.injector, or
    mock.injector for the mock survey), and for shards evaluate.folds. Values as the command line gives them
    (realfake.settings.from_config: lists as tuples, train.model as its config)."""
    from realfake.settings import from_config

    settings_class = section_settings()[section]
    values = {
        name: (f"{section}.{name}", value)
        for name, value in stage_settings(section).items()
    }
    if section == "cutouts":
        values["bands"] = ("bands", config["bands"])
        values["injector"] = (injector_key(), injector())
    if section == "mock" and mock_bands():
        values["bands"] = ("bands", mock_bands())
    if section == "shards" and shards_folds():
        values["folds"] = ("evaluate.folds", folds())
    return {
        values[field.name][0]: (
            field.name,
            from_config(settings_class, field.name, values[field.name][1]),
        )
        for field in dataclasses.fields(settings_class)
        if field.name in values
    }


def dataclass_problems(left_out=()):
    """What each stage's settings dataclass (section_settings) refuses in the
    config, one line per key: "config <key>: <the dataclass's message>". Config
    keys in left_out stay at the package's defaults. The mock's settings are
    checked only when the mock is the input. Paths are placeholders: the
    dataclasses do not check them, the rules give the real ones."""
    here = Path(".")
    placeholders = {
        "mock": [dict(out=here)],
        "cutouts": [dict(kind=kind, dr5_dir=here, obiwan_dir=here) for kind in KINDS],
        "shards": [dict(real_dir=here, sim_dir=here, out=here)],
        "train": [dict(shards=here, out=here)],
        "evaluate": [{}],
    }
    problems = []
    for section, settings_class in section_settings().items():
        if section == "mock" and not uses_mock_survey():
            continue
        values = config_settings(section)
        values = {key: value for key, value in values.items() if key not in left_out}
        for fixed in placeholders[section]:
            build = functools.partial(settings_class, **fixed)
            problems += settings_problems(build, values)
    # The cutouts settings of both kinds refuse the same keys alike: name each once.
    return list(dict.fromkeys(problems))


def settings_problems(build, values):
    """The keys of values ({config key: (argument, value)}) that build (a settings
    dataclass) refuses, each as "config <key>: <its message>"; [] when it takes
    them all. To name the key of a refusal, the keys are added one at a time, in
    the dataclass's field order, to its defaults (which are the schema's): a key
    it refuses there is named and left at its default."""
    try:
        build(**dict(values.values()))
        return []
    except RealfakeError:
        pass
    taken, problems = {}, []
    for key, (argument, value) in values.items():
        try:
            build(**taken, **{argument: value})
        except RealfakeError as error:
            problems.append(f"config {key}: {error}")
        else:
            taken[argument] = value
    return problems


def check_input_files():
    """Raise WorkflowError, naming each `input` key that names a missing file or
    directory, the fakes' tree when it is not in input.injector's layout
    (realfake.survey.runs.tree_problem), the plain run of cutouts.real_source run
    (cutouts.real_run) when the tree has no such run dir, or the line of the brick
    list that is wrong."""
    expected = {
        "dr5_dir": (Path.is_dir, "directory"),
        "obiwan_dir": (Path.is_dir, "directory"),
        "bricks_file": (Path.is_file, "file"),
    }
    problems = []
    for key, (exists, kind) in expected.items():
        path = config["input"][key]
        if not exists(Path(path)):
            problems.append(f"config input.{key}: {path!r} is not a {kind}")
    if problems:
        raise WorkflowError("\n".join(problems))
    from realfake.survey.runs import tree_problem

    problem = tree_problem(config["input"]["obiwan_dir"], config["input"]["injector"])
    if problem:
        raise WorkflowError(
            f"config input.obiwan_dir: {problem}; is config input.injector "
            f"({config['input']['injector']}) the code that made it?"
        )
    real_run = config["cutouts"]["real_run"]
    run_dir = Path(config["input"]["obiwan_dir"]) / str(real_run)
    if config["cutouts"]["real_source"] == "run" and real_run and not run_dir.is_dir():
        from realfake.survey.legacysim import run_names

        found = run_names(config["input"]["obiwan_dir"])
        raise WorkflowError(
            f"config cutouts.real_run: {real_run} is not a run dir of "
            f"input.obiwan_dir {config['input']['obiwan_dir']} (its runs: "
            f"{', '.join(found) or 'none'})"
        )
    brick_names_in(config["input"]["bricks_file"])


def check_manifest():
    """Raise WorkflowError when input.manifest names no file, or a manifest that
    its schema or realfake's checks refuse (the message names the tile, real side
    or fake run, band and key), or whose bands lack one of the config's."""
    path = config["input"]["manifest"]
    if not Path(path).is_file():
        raise WorkflowError(f"config input.manifest: {path!r} is not a file")
    from realfake.manifest import load_manifest

    try:
        manifest = load_manifest(path)
    except RealfakeError as error:
        raise WorkflowError(f"config input.manifest: {error}")
    missing = [band for band in bands() if band not in manifest.bands]
    if missing:
        raise WorkflowError(
            f"config bands [{', '.join(bands())}]: the manifest {path} has no "
            f"{', '.join(missing)} (its bands: {', '.join(manifest.bands)})"
        )


def check_split_bricks():
    """Raise WorkflowError when shards.split is brick and there are too few bricks
    to give each split (test, validation, train), or with cross-fitting each fold's
    training and validation parts, whole bricks of their own."""
    from realfake.shards.placement import (
        bricks_needed_for_folds,
        bricks_needed_for_split,
    )

    validation = config["shards"]["validation_fraction"]
    source = {"mock": "mock.bricks", "manifest": "input.manifest"}.get(
        config["input"]["source"], "input.bricks_file"
    )
    if shards_folds():
        needed = bricks_needed_for_folds(folds(), validation)
        if len(bricks()) < needed:
            raise WorkflowError(
                f"config evaluate.folds {folds()} needs at least {needed} bricks (one for "
                f"each fold's training part and one for its validation part), and {source} "
                f"gives {len(bricks())}: use fewer folds, or more bricks"
            )
        return
    needed = bricks_needed_for_split(validation)
    if config["shards"]["split"] == "brick" and len(bricks()) < needed:
        raise WorkflowError(
            f"config shards.split brick needs at least {needed} bricks, and {source} gives "
            f"{len(bricks())}: set shards.split to example, or use more bricks"
        )


# Stop before any job runs, naming the key, rather than at the first job that
# reads a missing tree or at the stage whose settings do not fit the others.
check_stage_settings()
if uses_manifest():
    check_manifest()
elif not uses_mock_survey():
    check_input_files()
check_split_bricks()
