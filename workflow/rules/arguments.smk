"""The command-line flags each stage's rule passes to `realfake`, built from the
validated config. Config reaches the package only through these (as params:)."""

import shlex


def settings_arguments(section, **values):
    """The `realfake` flags of the settings of one config section, made by
    realfake.settings.command_line from the stage's settings dataclass
    (section_settings), where each flag is declared once; values: settings that
    come from elsewhere (the bands, the trees), flagged first."""
    from realfake.settings import command_line

    settings = section_settings()[section]
    return shlex.join(command_line(settings, {**values, **stage_settings(section)}))


def mock_survey_arguments():
    """The mock-survey settings as `realfake mock-survey` flags. Every mock rule
    passes the same flags, so the brick table and each brick belong to one survey;
    the bands when the config's have DR10's i (mock_bands)."""
    return settings_arguments("mock", bands=mock_bands())


def cutouts_arguments():
    """The `realfake cutouts` flags every cutouts job shares: bands, the two trees
    and what made the fakes' tree (injector), or the manifest, and the cutouts
    settings of the config."""
    return settings_arguments(
        "cutouts",
        bands=bands(),
        dr5_dir=dr5_dir(),
        obiwan_dir=obiwan_dir(),
        manifest=config["input"]["manifest"] if uses_manifest() else None,
        injector=injector(),
    )


def shards_arguments():
    """The `realfake shards` flags from the shards section of the config, and the
    inputs the cutouts must come from: the trees and what made the fakes' tree
    (injector), or the manifest (a cutouts file left by a run on other inputs is
    refused: Snakemake keeps an existing file whose job it cannot plan)."""
    if uses_manifest():
        return settings_arguments(
            "shards", folds=shards_folds(), manifest=config["input"]["manifest"]
        )
    return settings_arguments(
        "shards",
        folds=shards_folds(),
        dr5_dir=dr5_dir(),
        obiwan_dir=obiwan_dir(),
        injector=injector(),
    )


def shards_bricks_arguments(wildcards, input):
    """`--bricks FILE` of the shards job: the brick list it restricts itself to,
    none with a manifest (bricks_file)."""
    return shlex.join(["--bricks", input.bricks]) if input.bricks else ""


def train_arguments():
    """The `realfake train` flags from the train section of the config."""
    return settings_arguments("train")


def fold_argument(wildcards):
    """The flag of a train or predict job of fold k's model (the {fold} wildcard
    "-fold<k>"), " --fold k" with its leading space; "" without cross-fitting (an
    empty {fold}), so that the command is word for word the one of a single split."""
    return f" --fold {wildcards.fold.removeprefix('-fold')}" if wildcards.fold else ""


def evaluate_arguments():
    """The `realfake evaluate` flags from the evaluate section of the config: its
    statistics settings, and evaluate.attribution, a setting of the command itself
    (realfake.evaluation.evaluate.EvaluateSettings, not imported here: it would
    import scikit-learn into planning)."""
    switch = (
        "--attribution" if config["evaluate"]["attribution"] else "--no-attribution"
    )
    return f"{settings_arguments('evaluate')} {switch}"


def attribution_maps(path):
    """[path] of an attribution-map file (evaluate's arrays, the report's figure)
    when evaluate.attribution is on; none when it is off, as nothing writes it."""
    return [path] if config["evaluate"]["attribution"] else []


def sensitivity_table():
    """The sensitivity table the report shows (evaluate.sensitivity_table), or none."""
    path = config["evaluate"]["sensitivity_table"]
    return [path] if path else []


def report_arguments():
    """The `realfake report` flags from the config: the sensitivity table, if any."""
    return shlex.join(
        [
            argument
            for path in sensitivity_table()
            for argument in ("--sensitivity-table", path)
        ]
    )


def launcher(wildcards, resources):
    """How a rule's command is started, from its resources (which profiles set):
    "<mpi> -n <tasks> " when resources.mpi names an MPI launcher (srun in the SLURM
    profiles, or mpiexec), then "env NAME=value ... " for resources.task_env. The
    rules' defaults give "", so the command runs as one plain process."""
    words = []
    if resources.mpi:
        words += [*shlex.split(resources.mpi), "-n", str(resources.tasks)]
    if resources.task_env:
        words += ["env", *shlex.split(resources.task_env)]
    return shlex.join(words) + " " if words else ""
