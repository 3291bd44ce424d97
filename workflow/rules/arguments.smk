"""The command-line flags each stage's rule passes to `realfake`, built from the
validated config. Config reaches the package only through these (as params:)."""

import shlex


def mock_survey_arguments():
    """The mock-survey settings as `realfake mock-survey` flags. Every mock rule
    passes the same flags, so the brick table and each brick belong to one survey."""
    mock = config["mock"]
    arguments = [
        "--bricks",
        str(mock["bricks"]),
        "--size",
        str(mock["size"]),
        "--seed",
        str(mock["seed"]),
        "--mismatch",
        mock["mismatch"],
        "--rsdirs",
        str(mock["rsdirs"]),
        "--fakes-per-rsdir",
        str(mock["fakes_per_rsdir"]),
    ]
    if mock["strength"] is not None:
        arguments += ["--strength", str(mock["strength"])]
    return shlex.join(arguments)


def cutouts_arguments():
    """The `realfake cutouts` flags every cutouts job shares: bands, the two trees
    and the cutouts settings of the config."""
    cutouts = config["cutouts"]
    arguments = [
        "--bands",
        "".join(bands()),
        "--dr5-dir",
        dr5_dir(),
        "--obiwan-dir",
        obiwan_dir(),
        "--selection",
        cutouts["selection"],
        "--real-source",
        cutouts["real_source"],
        "--real-exclusion-radius",
        str(cutouts["real_exclusion_radius"]),
    ]
    if cutouts["select_fakes"]:
        arguments.append("--select-fakes")
    if cutouts["pad_edges"]:
        arguments.append("--pad-edges")
    return shlex.join(arguments)


def shards_arguments():
    """The `realfake shards` flags from the shards section of the config, and the
    trees the cutouts must come from (a cutouts file left by a run on other
    inputs is refused: Snakemake keeps an existing file whose job it cannot plan)."""
    shards = config["shards"]
    return shlex.join(
        [
            "--dr5-dir",
            dr5_dir(),
            "--obiwan-dir",
            obiwan_dir(),
            "--seed",
            str(shards["seed"]),
            "--test-fraction",
            str(shards["test_fraction"]),
            "--validation-fraction",
            str(shards["validation_fraction"]),
            "--shard-size",
            str(shards["shard_size"]),
            "--balance",
            shards["balance"],
            "--match",
            ",".join(shards["match"]) or "none",
            "--match-bin-width",
            str(shards["match_bin_width"]),
            "--split",
            shards["split"],
            "--dtype",
            shards["dtype"],
        ]
    )


def train_arguments():
    """The `realfake train` flags from the train section of the config."""
    train = config["train"]
    arguments = [
        "--model",
        train["model"],
        "--epochs",
        str(train["epochs"]),
        "--batch-size",
        str(train["batch_size"]),
        "--learning-rate",
        str(train["learning_rate"]),
        "--seed",
        str(train["seed"]),
        "--checkpoint-every",
        str(train["checkpoint_every"]),
        "--log-every",
        str(train["log_every"]),
        "--select",
        train["select"],
    ]
    arguments.append("--augment" if train["augment"] else "--no-augment")
    arguments.append(
        "--deterministic" if train["deterministic"] else "--no-deterministic"
    )
    return shlex.join(arguments)


def evaluate_arguments():
    """The `realfake evaluate` flags from the evaluate section of the config."""
    evaluate = config["evaluate"]
    return shlex.join(
        [
            "--significance",
            str(evaluate["significance"]),
            "--bootstrap",
            str(evaluate["bootstrap"]),
            "--bins",
            str(evaluate["bins"]),
            "--correction",
            evaluate["correction"],
            "--seed",
            str(evaluate["seed"]),
            "--tolerance",
            str(evaluate["tolerance"]),
            "--baseline-rows",
            str(evaluate["baseline_rows"]),
        ]
    )


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
