"""Helpers shared by every stage: the validated config, the brick list, where the
DR5 and obiwan trees are, and what the workflow's default target asks for.

Paths are relative to the directory Snakemake runs in (the repository root).
"""

import functools
import os
import shlex
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from realfake.conventions import (
    BRICK_NAME_PATTERN,
    KINDS,
    SURVEY_BANDS,
    TILE_FILE_PATTERN,
    brick_directory,
    name_directory,
    parse_brick_list,
)
from realfake.errors import RealfakeError
from realfake.mock.layout import (
    MOCK_PLAIN_RUN,
    mock_brick_names,
    mock_injector_directory,
    mock_rsdir_names,
)
from realfake.conventions import PIXEL_BINS
from realfake.model.views import VIEWS

validate(config, "../schemas/config.schema.yaml")


wildcard_constraints:
    # A DR5 brick name, or with input.source manifest a tile's file name.
    brick=(
        TILE_FILE_PATTERN
        if config["input"]["source"] == "manifest"
        else BRICK_NAME_PATTERN
    ),
    # The brick's (tile's) directory: its first three characters.
    bri=r"[A-Za-z0-9._-]{1,3}" if config["input"]["source"] == "manifest" else r"\d{3}",
    kind="|".join(KINDS),
    # A batch of bricks cut by one MPI job: "3-of-100" (see cutouts_batches()).
    batch=r"\d+-of-\d+",
    # A part of a scattered prediction: "2-of-8" (prediction_parts()).
    part=r"\d+-of-\d+",
    # What a CNN sees of the stamps: full, or a restricted view for the audit.
    view="|".join(VIEWS),
    # Which fold's model, with cross-fitting (evaluate.folds > 1): "-fold<k>"; empty without.
    fold=r"(-fold\d+)?",


def all_cores():
    """The cores Snakemake was given (--cores or the profile's), or 1 when none
    were: commands that only draw or describe the workflow (--dag, --rulegraph,
    --report) run without --cores."""
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def uses_mock_survey():
    """True when the input is the mock survey rendered under results/mock."""
    return config["input"]["source"] == "mock"


def uses_manifest():
    """True when the input is the injection run manifest named by input.manifest."""
    return config["input"]["source"] == "manifest"


@functools.cache
def manifest_tiles():
    """The file names of the manifest's tiles, in its order; the manifest is
    checked on the way (realfake.manifest.load_manifest: errors name the tile, side,
    band and key)."""
    from realfake.manifest import load_manifest

    try:
        return list(load_manifest(config["input"]["manifest"]).tiles)
    except RealfakeError as error:
        raise WorkflowError(f"config input.manifest: {error}")


def bands():
    """The configured bands, e.g. ["g", "r", "z"]."""
    return config["bands"]


def mock_bands():
    """The bands the mock survey renders when they are not its default g, r, z:
    g, r, i, z when the configured bands have DR10's i; else None (no flag)."""
    return list(SURVEY_BANDS) if "i" in bands() else None


@functools.cache
def brick_names_in(path):
    """The brick names listed in a text file, one per line; blank lines and text
    after # are ignored. Raises WorkflowError naming the file and line of a name
    that is not a DR5 brick name, and for an empty list or a repeated brick (the
    package's one brick-list parser, realfake.conventions.parse_brick_list)."""
    try:
        return parse_brick_list(
            Path(path).read_text(), f"{path} (config input.bricks_file)"
        )
    except RealfakeError as error:
        raise WorkflowError(str(error))


def bricks():
    """The bricks the workflow processes: the mock survey's when input.source is
    mock, the manifest's tiles (their file names) when it is manifest, else those
    listed in input.bricks_file."""
    if uses_manifest():
        return manifest_tiles()
    if uses_mock_survey():
        return mock_brick_names(config["mock"]["bricks"])
    return brick_names_in(config["input"]["bricks_file"])


def mock_directory():
    """Where the mock survey is written: the directory of its brick list."""
    return os.path.dirname(rules.mock_brick_table.output.bricks)


def mock_output_directory(wildcards):
    """mock_directory(), for the mock rules' own params (evaluated once the rules exist)."""
    return mock_directory()


def dr5_dir():
    """The DR5 tree (coadd/, tractor/, survey-bricks table) the workflow reads;
    None with a manifest."""
    if uses_manifest():
        return None
    if uses_mock_survey():
        return os.path.dirname(rules.mock_brick_table.output.table)
    return config["input"]["dr5_dir"]


def injector():
    """What made the fakes' tree, obiwan or legacysim: mock.injector for the mock
    survey (the tree it writes), else input.injector."""
    if uses_mock_survey():
        return config["mock"]["injector"]
    return config["input"]["injector"]


def injector_key():
    """The config key injector() comes from, to name in messages."""
    return "mock.injector" if uses_mock_survey() else "input.injector"


def obiwan_dir():
    """The fakes' tree the workflow reads: obiwan's (coadd/ and obiwan/ with rs
    dirs) or legacysim's (run dirs at its top), as injector() says; None with a
    manifest."""
    if uses_manifest():
        return None
    if uses_mock_survey():
        return os.path.join(mock_directory(), mock_injector_directory(injector()))
    return config["input"]["obiwan_dir"]


def mock_rsdirs():
    """The mock survey's rs dirs (obiwan, e.g. ["rs0", "rs150"]) or runs
    (legacysim, e.g. ["file0_rs0_skip0", "file0_rs150_skip0"]) of every brick."""
    return mock_rsdir_names(
        config["mock"]["rsdirs"], config["mock"]["fakes_per_rsdir"], injector()
    )


# The files of one rs dir (run) of a mock brick in each injector's layout
# (realfake.paths.obiwan_file and legacysim_file), for the mock_brick rule.
MOCK_RUN_FILES = {
    "obiwan": {
        "image": "results/mock/obiwan/coadd/{{bri}}/{{brick}}/{run}/legacysurvey-{{brick}}-image-{band}.fits.fz",
        "invvar": "results/mock/obiwan/coadd/{{bri}}/{{brick}}/{run}/legacysurvey-{{brick}}-invvar-{band}.fits.fz",
        "catalog": "results/mock/obiwan/obiwan/{{bri}}/{{brick}}/{run}/simcat-elg-{{brick}}.fits",
        "tractor": "results/mock/obiwan/tractor/{{bri}}/{{brick}}/{run}/tractor-{{brick}}.fits",
    },
    "legacysim": {
        "image": "results/mock/legacysim/{run}/coadd/{{bri}}/{{brick}}/legacysurvey-{{brick}}-image-{band}.fits.fz",
        "invvar": "results/mock/legacysim/{run}/coadd/{{bri}}/{{brick}}/legacysurvey-{{brick}}-invvar-{band}.fits.fz",
        "catalog": "results/mock/legacysim/{run}/sim/{{bri}}/injected-{{brick}}.fits",
        "tractor": "results/mock/legacysim/{run}/tractor/{{bri}}/tractor-{{brick}}.fits",
    },
}


def mock_run_files(product):
    """The mock_brick outputs of one product (image, invvar, catalog, tractor) of
    every rs dir (run), in the layout of mock.injector; images per band."""
    pattern = MOCK_RUN_FILES[config["mock"]["injector"]][product]
    if "{band}" in pattern:
        return expand(pattern, run=mock_rsdirs(), band=bands())
    return expand(pattern, run=mock_rsdirs())


def mock_plain_run_files(product):
    """The mock_brick outputs of one product (image, invvar, catalog, tractor) of
    the mock's plain legacypipe run (MOCK_PLAIN_RUN, in legacysim's layout) when
    mock.plain_run is true, else none; images per band."""
    if not config["mock"]["plain_run"]:
        return []
    pattern = MOCK_RUN_FILES["legacysim"][product]
    if "{band}" in pattern:
        return expand(pattern, run=[MOCK_PLAIN_RUN], band=bands())
    return expand(pattern, run=[MOCK_PLAIN_RUN])


def mock_manifest_files():
    """The Rubin-like files of one mock brick (realfake.mock.manifest) when
    mock.manifest is true, else none: ExposureF files of the real side and of each
    rs dir per band, the object catalog and each rs dir's truth and measured
    catalogs."""
    if not config["mock"]["manifest"]:
        return []
    rsdirs = mock_rsdirs()
    return (
        expand("results/mock/manifest/{{bri}}/{{brick}}/real-{band}.fits", band=bands())
        + expand(
            "results/mock/manifest/{{bri}}/{{brick}}/fake-{run}-{band}.fits",
            run=rsdirs,
            band=bands(),
        )
        + ["results/mock/manifest/{bri}/{brick}/object.fits"]
        + expand("results/mock/manifest/{{bri}}/{{brick}}/truth-{run}.fits", run=rsdirs)
        + expand(
            "results/mock/manifest/{{bri}}/{{brick}}/measured-{run}.fits", run=rsdirs
        )
    )


def mock_run_manifest():
    """The mock's manifest, results/mock/manifest/run.yaml, when mock.manifest is
    true, else none."""
    return ["results/mock/manifest/run.yaml"] if config["mock"]["manifest"] else []


def mock_survey_files():
    """Every file of the mock survey: the brick table and each brick's files."""
    brick_names = bricks()
    return list(rules.mock_brick_table.output) + expand(
        rules.mock_brick.output,
        zip,
        bri=[name_directory(brick) for brick in brick_names],
        brick=brick_names,
    )


def mock_cutouts_input_files(kind, brick):
    """The mock survey files the cutouts of one brick and kind read: the brick
    table and that brick's DR5 coadds and tractor (real; with cutouts.real_source
    rsdir the DR5 tractor and the rs dir coadds and fake catalogs; with run the
    plain run's tractor, empty injected catalog and coadds) or rs dir coadds, fake
    catalogs (simcats, or legacysim's injected catalogs) and tractor catalogs
    (sim: never the plain run's), as the mock rules name them."""
    outputs = rules.mock_brick.output
    if kind == "real" and config["cutouts"]["real_source"] == "run":
        patterns = [
            *outputs.plain_tractor,
            *outputs.plain_catalog,
            *outputs.plain_images,
            *outputs.plain_invvars,
        ]
    elif kind == "real" and config["cutouts"]["real_source"] == "rsdir":
        patterns = [
            outputs.tractor,
            *outputs.sim_images,
            *outputs.sim_invvars,
            *outputs.sim_catalogs,
        ]
    elif kind == "real":
        patterns = [*outputs.images, *outputs.invvars, outputs.tractor]
    else:
        patterns = [
            *outputs.sim_images,
            *outputs.sim_invvars,
            *outputs.sim_catalogs,
            *outputs.sim_tractors,
        ]
    files = expand(patterns, bri=brick_directory(brick), brick=brick)
    return [rules.mock_brick_table.output.table, *files]


def cutouts_input_files(wildcards):
    """The files the cutouts job of one brick and kind reads (see brick_input_files)."""
    if wildcards.bri != name_directory(wildcards.brick):
        raise WorkflowError(
            f"cutouts of brick {wildcards.brick} belong in directory "
            f"{name_directory(wildcards.brick)}, not {wildcards.bri}"
        )
    return brick_input_files(wildcards.kind, wildcards.brick)


def brick_input_files(kind, brick):
    """The files the cutouts of one brick and kind read. With real files they are
    found on disk when the workflow is planned (the rs dirs of each brick), by the
    function `realfake cutouts` itself uses (realfake.cutouts.input_files)."""
    if uses_mock_survey():
        return mock_cutouts_input_files(kind, brick)
    # Imported here: reading real trees needs astropy, which the mock workflow's
    # planning can do without.
    from realfake.cutouts import input_files

    try:
        return [str(path) for path in input_files(cutout_settings(kind), brick)]
    except RealfakeError as error:
        raise WorkflowError(f"cutouts {kind} of brick {brick}: {error}")


@functools.cache
def cutout_settings(kind):
    """The realfake CutoutSettings of one kind that planning needs (made once: a
    survey has 100k bricks); the injector comes with the config's settings
    (config_settings)."""
    settings = dict(config_settings("cutouts").values())
    if uses_manifest():
        trees = dict(manifest=Path(config["input"]["manifest"]))
    else:
        trees = dict(dr5_dir=Path(dr5_dir()), obiwan_dir=Path(obiwan_dir()))
    return section_settings()["cutouts"](kind=kind, **trees, **settings)


def cutouts_directory(kind):
    """The directory of one kind's cutouts files (results/cutouts/<kind>), from the
    cutouts rule's output."""
    brick_file = rules.cutouts.output[0]
    return os.path.dirname(os.path.dirname(brick_file)).format(kind=kind)


def cutouts_directory_of(kind):
    """cutouts_directory(kind) as a params function (the linter asks that path
    prefixes of inputs come from functions)."""

    def directory(wildcards):
        return cutouts_directory(kind)

    return directory


def batch_cutouts_directory(wildcards):
    """The directory a cutouts batch job writes its kind's files to."""
    return cutouts_directory(wildcards.kind)


def cutouts_files_of(kind):
    """Every brick's cutouts file of one kind (real or sim)."""
    brick_names = bricks()
    return expand(
        rules.cutouts.output[0],
        zip,
        kind=[kind] * len(brick_names),
        bri=[name_directory(brick) for brick in brick_names],
        brick=brick_names,
    )


@functools.cache
def cutouts_batches():
    """{batch: brick names} when the cutouts run as MPI jobs over batches of bricks,
    else {} (the default: one job per brick and kind).

    The number of batches per kind is the profile's `set-scatter: cutouts=N`
    (scattergather default 0 in cutouts.smk), at most one per brick. The brick
    list is cut into N consecutive runs of near-equal length, named "1-of-N" to
    "N-of-N", so a batch's bricks stay the same from one run to the next.
    """
    brick_names = bricks()
    count = min(len(scatter.cutouts("{scatteritem}")), len(brick_names))
    batches = {}
    for index in range(count):
        start = index * len(brick_names) // count
        stop = (index + 1) * len(brick_names) // count
        batches[f"{index + 1}-of-{count}"] = brick_names[start:stop]
    return batches


def bricks_of_batch(batch):
    """The brick names of one batch, e.g. of "3-of-100"; WorkflowError for a batch
    the current brick list and batch count do not have."""
    batches = cutouts_batches()
    if batch not in batches:
        raise WorkflowError(
            f"cutouts batch {batch} does not exist: with {len(bricks())} bricks and "
            f"set-scatter cutouts={len(scatter.cutouts('{scatteritem}'))} the batches "
            f"are 1-of-{len(batches)} to {len(batches)}-of-{len(batches)}"
        )
    return batches[batch]


def batch_brick_names(wildcards):
    """The brick names of the batch of a job, for its brick list."""
    return bricks_of_batch(wildcards.batch)


def batch_cutouts_files(wildcards):
    """The cutouts files that the batch of a job writes, of its kind."""
    brick_names = bricks_of_batch(wildcards.batch)
    return expand(
        rules.cutouts.output[0],
        zip,
        kind=[wildcards.kind] * len(brick_names),
        bri=[name_directory(brick) for brick in brick_names],
        brick=brick_names,
    )


def batch_input_files(wildcards):
    """Every file the cutouts of a batch read, of its kind: those of its bricks."""
    files = []
    for brick in bricks_of_batch(wildcards.batch):
        files.extend(brick_input_files(wildcards.kind, brick))
    # The brick table is an input of every brick: list it once.
    return list(dict.fromkeys(files))


def cutouts_products_of(kind):
    """What the later stages wait for from the cutouts of one kind: every brick's
    file, or, when the cutouts run in batches, each batch's completion marker."""
    batches = cutouts_batches()
    if not batches:
        return cutouts_files_of(kind)
    return expand(rules.cutouts_batch.output[0], kind=kind, batch=list(batches))


def cutouts_products():
    """cutouts_products_of both kinds, real then sim."""
    return cutouts_products_of("real") + cutouts_products_of("sim")


def bricks_file():
    """The brick list file the shards stage restricts itself to: the mock's
    bricks.txt, or input.bricks_file; none with a manifest (the shards take every
    cutouts file)."""
    if uses_manifest():
        return []
    if uses_mock_survey():
        return rules.mock_brick_table.output.bricks
    return config["input"]["bricks_file"]


def folds():
    """evaluate.folds: 1 for one held-out split, K >= 2 for cross-fitting by brick."""
    return config["evaluate"]["folds"]


def shards_folds():
    """The shards' --folds: K with cross-fitting, None (no flag: the shards command
    of one split is unchanged) without."""
    return folds() if folds() > 1 else None


def fold_suffixes():
    """The {fold} wildcard of each model of a view: "-fold0" ... "-fold<K-1>" with
    cross-fitting, one empty suffix without (results/train/{view}/ as ever)."""
    return [f"-fold{fold}" for fold in range(folds())] if folds() > 1 else [""]


def trained_file(view, name="model.keras", fold=0):
    """A file of a view's training (model.keras, history.json): fold `fold`'s model's
    with cross-fitting (the evaluation's attribution maps and the report's training
    curves are fold 0's)."""
    return f"results/train/{view}{fold_suffixes()[fold]}/{name}"


def prediction_parts(view):
    """The predictions files of one view's CNN, or of its K models with
    cross-fitting: one per part ("1-of-N" ... "N-of-N", N the profile's
    `set-scatter: predict=N`, 1 by default) of each model's test examples."""
    return [
        path
        for suffix in fold_suffixes()
        for path in scatter.predict(
            f"results/evaluate/{view}{suffix}/parts/{{scatteritem}}.parquet"
        )
    ]


def audit_predictions():
    """The predictions files of the CNNs of the audited views (evaluate.audit), view
    by view, each view's parts in order."""
    return [
        path for view in config["evaluate"]["audit"] for path in prediction_parts(view)
    ]


def audit_arguments(wildcards, input):
    """`--audit VIEW=FILE` for each part of each audited view, from the evaluate job's
    inputs."""
    parts = len(prediction_parts("full"))
    views = [view for view in config["evaluate"]["audit"] for _ in range(parts)]
    return " ".join(
        f"--audit {view}={shlex.quote(path)}" for view, path in zip(views, input.audit)
    )


def final_targets():
    """What the default target asks for: the report (and through it every stage
    before it), plus every brick's cutouts (or every batch of them) and, with the
    mock, the mock survey."""
    targets = cutouts_products() + list(rules.report.output)
    if uses_mock_survey():
        targets = mock_survey_files() + targets
    return targets
