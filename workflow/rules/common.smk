"""Helpers shared by every stage: the validated config, the brick list, where the
DR5 and obiwan trees are, and what the workflow's default target asks for.

Paths are relative to the directory Snakemake runs in (the repository root).
"""

import functools
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from realfake.mock import mock_brick_names, mock_rsdir_names

# A DR5 brick name: RA*10 as four digits, p (north) or m (south), |Dec|*10 as three.
BRICK_NAME_PATTERN = r"\d{4}[pm]\d{3}"


validate(config, "../schemas/config.schema.yaml")


wildcard_constraints:
    brick=BRICK_NAME_PATTERN,
    # The brick's directory in the DR5 and obiwan trees: its first three characters.
    bri=r"\d{3}",
    kind=r"real|sim",


def uses_mock_survey():
    """True when the input is the mock survey rendered under results/mock."""
    return config["input"]["source"] == "mock"


def bands():
    """The configured bands, e.g. ["g", "r", "z"]."""
    return config["bands"]


@functools.cache
def brick_names_in(path):
    """The brick names listed in a text file, one per line; blank lines and text
    after # are ignored. Raises WorkflowError naming the file and line of a name
    that is not a DR5 brick name, and for an empty list or a repeated brick."""
    names = []
    lines = Path(path).read_text().splitlines()
    for line_number, line in enumerate(lines, start=1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if re.fullmatch(BRICK_NAME_PATTERN, name) is None:
            raise WorkflowError(
                f"{path}, line {line_number} (config input.bricks_file): "
                f"{name!r} is not a DR5 brick name like 1238p245"
            )
        if name in names:
            raise WorkflowError(
                f"{path}, line {line_number} (config input.bricks_file): "
                f"brick {name} is listed twice"
            )
        names.append(name)
    if not names:
        raise WorkflowError(f"{path} (config input.bricks_file) lists no bricks")
    return names


def bricks():
    """The bricks the workflow processes: the mock survey's when input.source is
    mock, else those listed in input.bricks_file."""
    if uses_mock_survey():
        return mock_brick_names(config["mock"]["bricks"])
    return brick_names_in(config["input"]["bricks_file"])


def brick_directory(brick):
    """The directory a brick's files sit in, in DR5 and obiwan trees: "123" for
    brick 1238p245."""
    return brick[:3]


def dr5_dir():
    """The DR5 tree (coadd/, tractor/, survey-bricks table) the workflow reads."""
    if uses_mock_survey():
        return "results/mock/dr5"
    return config["input"]["dr5_dir"]


def obiwan_dir():
    """The obiwan output tree (coadd/ and obiwan/ with rs dirs) the workflow reads."""
    if uses_mock_survey():
        return "results/mock/obiwan"
    return config["input"]["obiwan_dir"]


def mock_rsdirs():
    """The mock survey's obiwan rs dirs for every brick, e.g. ["rs0", "rs150"]."""
    return mock_rsdir_names(config["mock"]["rsdirs"], config["mock"]["fakes_per_rsdir"])


def mock_survey_files():
    """Every file of the mock survey: the brick table and each brick's files."""
    brick_names = bricks()
    return list(rules.mock_brick_table.output) + expand(
        rules.mock_brick.output,
        zip,
        bri=[brick_directory(brick) for brick in brick_names],
        brick=brick_names,
    )


def mock_cutouts_input_files(kind, brick):
    """The mock survey files the cutouts of one brick and kind read: the brick
    table and that brick's DR5 coadds and tractor (real) or rs dir coadds and
    simcats (sim), as the mock rules name them."""
    outputs = rules.mock_brick.output
    if kind == "real":
        patterns = [*outputs.images, *outputs.invvars, outputs.tractor]
    else:
        patterns = [*outputs.sim_images, *outputs.sim_invvars, *outputs.simcats]
    files = expand(patterns, bri=brick_directory(brick), brick=brick)
    return [rules.mock_brick_table.output.table, *files]


def cutouts_input_files(wildcards):
    """The files the cutouts job of one brick and kind reads. With real files they
    are found on disk when the workflow is planned (the rs dirs of each brick), by
    the function `realfake cutouts` itself uses (realfake.cutouts.input_files)."""
    if wildcards.bri != brick_directory(wildcards.brick):
        raise WorkflowError(
            f"cutouts of brick {wildcards.brick} belong in directory "
            f"{brick_directory(wildcards.brick)}, not {wildcards.bri}"
        )
    if uses_mock_survey():
        return mock_cutouts_input_files(wildcards.kind, wildcards.brick)
    # Imported here: reading real trees needs astropy, which the mock workflow's
    # planning can do without.
    from realfake.cutouts import CutoutSettings, input_files
    from realfake.errors import RealfakeError

    settings = CutoutSettings(
        kind=wildcards.kind,
        dr5_dir=Path(dr5_dir()),
        obiwan_dir=Path(obiwan_dir()),
        bands=tuple(bands()),
    )
    try:
        return [str(path) for path in input_files(settings, wildcards.brick)]
    except RealfakeError as error:
        raise WorkflowError(
            f"cutouts {wildcards.kind} of brick {wildcards.brick}: {error}"
        )


def cutouts_files_of(kind):
    """Every brick's cutouts file of one kind (real or sim)."""
    brick_names = bricks()
    return expand(
        rules.cutouts.output[0],
        zip,
        kind=[kind] * len(brick_names),
        bri=[brick_directory(brick) for brick in brick_names],
        brick=brick_names,
    )


def cutouts_files():
    """Every brick's cutouts file, real and sim."""
    return cutouts_files_of("real") + cutouts_files_of("sim")


def bricks_file():
    """The brick list file the shards stage restricts itself to: the mock's
    bricks.txt, or input.bricks_file."""
    if uses_mock_survey():
        return rules.mock_brick_table.output.bricks
    return config["input"]["bricks_file"]


def final_targets():
    """What the default target asks for: the report (and through it every stage
    before it), plus every brick's cutouts and, with the mock, the mock survey."""
    targets = cutouts_files() + list(rules.report.output)
    if uses_mock_survey():
        targets = mock_survey_files() + targets
    return targets


def check_input_files():
    """Raise WorkflowError, naming each `input` key that names a missing file or
    directory, or the line of the brick list that is wrong."""
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
    brick_names_in(config["input"]["bricks_file"])


# Stop before any job runs, naming the key, rather than at the first job that
# reads a missing tree.
if not uses_mock_survey():
    check_input_files()
