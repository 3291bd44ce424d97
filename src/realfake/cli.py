"""The ``realfake`` command line: argparse -> settings dataclass -> library call.

Each subcommand is one pipeline stage. Its flags are made from the fields of the stage's settings dataclass
(:func:`realfake.settings.add_arguments`: help, default, choices and bounds are declared there, once); the few
flags that are not settings (where the bricks come from and go to, the model overrides) are written here. The CLI
does no work of its own: it parses arguments, builds the frozen settings and calls the library function. A
:class:`~realfake.errors.RealfakeError` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from realfake import __version__
from realfake.errors import RealfakeError
from realfake.progress import say
from realfake.settings import add_arguments, parse_integers, settings_from_arguments

# Each subcommand's one-line help: `realfake --help` lists them without importing any stage.
COMMAND_HELP = {
    "mock-survey": "write a small mock survey in the DR5 and obiwan file layouts",
    "cutouts": "cut 64x64 stamps of real or fake sources of a brick into one HDF5 file",
    "shards": "shuffle per-brick cutouts into balanced train/validation/test .npy shards",
    "train": "train the classifier on a shard set (resumes from OUT/ckpts)",
    "predict": "run a trained model over the test split and write its predictions",
    "evaluate": "predict the test split and test whether the CNN tells fakes from reals",
    "report": "write the figures, mosaics, galleries and index.html",
}


def _add_mock_survey(subparsers) -> None:
    from realfake.mock.settings import MockSettings

    parser = subparsers.add_parser(
        "mock-survey",
        help=COMMAND_HELP["mock-survey"],
        description=(
            "Render a mock survey with GalSim: a DR5 tree (brick table, coadds, "
            "tractor catalogs) and an obiwan tree (rs dirs with simcats and coadds "
            "holding the same scene plus injected fakes)."
        ),
    )
    add_arguments(parser, MockSettings)
    parser.add_argument(
        "--brick",
        action="append",
        dest="only_bricks",
        metavar="NAME",
        help="write only this brick's files (repeatable); the brick table is written when no --brick is given",
    )
    parser.add_argument(
        "--table-only",
        action="store_true",
        help="write only the brick table (dr5/survey-bricks.fits) and bricks.txt",
    )
    parser.set_defaults(func=_run_mock_survey)


def _run_mock_survey(args: argparse.Namespace) -> None:
    from realfake.mock.settings import MockSettings
    from realfake.mock.survey import run_mock_survey

    settings = settings_from_arguments(MockSettings, args)
    run_mock_survey(settings, only_bricks=args.only_bricks, table_only=args.table_only)


def _add_cutouts(subparsers) -> None:
    from realfake.cutouts import CutoutSettings

    parser = subparsers.add_parser(
        "cutouts",
        help=COMMAND_HELP["cutouts"],
        description=(
            "Cut stamps (bands then inverse variances, channels-last) around the real "
            "(tractor) or fake (obiwan simcat) sources of one brick, or of every brick "
            "in a list (batch mode; under mpiexec/srun the ranks share the bricks). "
            "Both kinds go through one code path: position from ra, dec through the "
            "coadd WCS, stamp centred on the nearest pixel."
        ),
    )
    brick = parser.add_mutually_exclusive_group(required=True)
    brick.add_argument("--brick", metavar="NAME", help="one brick, e.g. 1238p245 (needs --out)")
    brick.add_argument(
        "--bricks",
        type=Path,
        metavar="LIST_FILE",
        help="batch mode: a file of brick names, one per line (needs --out-dir)",
    )
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", type=Path, metavar="FILE.h5", help="output file of --brick")
    out.add_argument("--out-dir", type=Path, metavar="DIR", help="batch mode: write DIR/<AAA>/<brick>.h5")
    add_arguments(parser, CutoutSettings)
    parser.set_defaults(func=_run_cutouts)


def _run_cutouts(args: argparse.Namespace) -> None:
    from realfake.cutouts import CutoutSettings, run_cutouts, run_cutouts_batch

    if (args.brick is None) != (args.out is None):
        raise RealfakeError("give --brick with --out, or --bricks with --out-dir")
    settings = settings_from_arguments(CutoutSettings, args)
    if args.brick is not None:
        counts = run_cutouts(settings, args.brick, args.out)
        say(f"cutouts {args.kind}", f"brick {args.brick}: {counts.summary()} -> {args.out}")
    else:
        run_cutouts_batch(settings, args.bricks, args.out_dir)


def _add_shards(subparsers) -> None:
    from realfake.shards.settings import ShardSettings

    parser = subparsers.add_parser(
        "shards",
        help=COMMAND_HELP["shards"],
        description=(
            "Balance the classes (matched in catalog quantities), split by brick or by example into train, "
            "validation and test, shuffle globally across bricks and write x<split>_N.npy, y<split>_N.npy and "
            "<split>_catalog.parquet for each split, and manifest.json (docs/shards_format.md)."
        ),
    )
    add_arguments(parser, ShardSettings)
    parser.set_defaults(func=_run_shards)


def _run_shards(args: argparse.Namespace) -> None:
    from realfake.shards.build import run_shards
    from realfake.shards.settings import ShardSettings

    run_shards(settings_from_arguments(ShardSettings, args))


def _add_train(subparsers) -> None:
    from realfake.training import TrainSettings

    parser = subparsers.add_parser(
        "train",
        help=COMMAND_HELP["train"],
        description=(
            "Train the real/fake CNN with a custom TensorFlow loop: OUT/ckpts (exact resume: re-run the same "
            "command), OUT/logs (TensorBoard), OUT/prof (profile and trace.json.gz), OUT/model.keras and "
            "OUT/history.json. Multi-worker when TF_CONFIG is set or under srun with several tasks."
        ),
        epilog=(
            "Threads: besides --intra-op-threads/--inter-op-threads, Intel OpenMP builds (KNL) read "
            "OMP_NUM_THREADS, KMP_AFFINITY and KMP_BLOCKTIME from the environment; set them before launching."
        ),
    )
    add_arguments(parser, TrainSettings)
    overrides = parser.add_argument_group("overrides of the --model architecture")
    overrides.add_argument("--conv-maps", type=parse_integers, help="maps per convolution block, e.g. 18,36,54")
    overrides.add_argument("--kernel-size", type=int, help="convolution kernel size")
    overrides.add_argument("--dense-units", type=parse_integers, help="hidden dense layer widths, e.g. 64")
    parser.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> None:
    from realfake.model.architectures import model_config
    from realfake.training import TrainSettings, run_train

    model = model_config(
        args.model, conv_maps=args.conv_maps, kernel_size=args.kernel_size, dense_units=args.dense_units
    )
    run_train(settings_from_arguments(TrainSettings, args, model=model))


def _add_predict(subparsers) -> None:
    from realfake.evaluation.predict import PredictSettings

    parser = subparsers.add_parser(
        "predict",
        help=COMMAND_HELP["predict"],
        description=(
            "Run the trained model over the test shards, one batch at a time, and write a parquet file: per test "
            "example its catalog row, stamp statistics and p_fake, with the shard set and the model's view "
            "recorded (realfake evaluate --predictions and --audit read it)."
        ),
    )
    add_arguments(parser, PredictSettings)
    parser.set_defaults(func=_run_predict)


def _run_predict(args: argparse.Namespace) -> None:
    from realfake.evaluation.predict import PredictSettings, run_predict

    run_predict(settings_from_arguments(PredictSettings, args))


def _add_evaluate(subparsers) -> None:
    from realfake.evaluation.evaluate import EvaluateSettings

    parser = subparsers.add_parser(
        "evaluate",
        help=COMMAND_HELP["evaluate"],
        description=(
            "Run the trained model over the test shards (one batch at a time) and write predictions.parquet, "
            "metrics.json (the verdict: the AUC with its interval and two-sided Mann-Whitney test, the outcome "
            "against the tolerance, the minimum detectable AUC, the accuracy's binomial test; breakdowns in bins; "
            "shortcut baselines) and breakdowns.csv."
        ),
    )
    add_arguments(parser, EvaluateSettings)
    parser.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> None:
    from realfake.evaluation.evaluate import EvaluateSettings, run_evaluate

    run_evaluate(settings_from_arguments(EvaluateSettings, args))


def _add_report(subparsers) -> None:
    from realfake.report import ReportSettings

    parser = subparsers.add_parser(
        "report",
        help=COMMAND_HELP["report"],
        description=(
            "Training curves, ROC, accuracy against g magnitude, the original obiwan write-up's Figure 1 mosaics "
            "at five brightness percentiles, galleries of the CNN's surest mistakes, and index.html "
            "(opens with no network)."
        ),
    )
    add_arguments(parser, ReportSettings)
    parser.set_defaults(func=_run_report)


def _run_report(args: argparse.Namespace) -> None:
    from realfake.report import ReportSettings, run_report

    run_report(settings_from_arguments(ReportSettings, args))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand (``command`` None); given a ``command``, only that subcommand's flags are
    built and the others are listed with their help, so that a job imports its own stage's settings and not every
    stage's (2.6 s of imports a job before; any other string: no subcommand's flags, for ``realfake --help``)."""
    parser = argparse.ArgumentParser(
        prog="realfake",
        description="Do fake galaxies injected into real sky images look real?",
    )
    parser.add_argument("--version", action="version", version=f"realfake {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    adders = {
        "mock-survey": _add_mock_survey, "cutouts": _add_cutouts, "shards": _add_shards, "train": _add_train,
        "predict": _add_predict, "evaluate": _add_evaluate, "report": _add_report,
    }  # fmt: skip
    for name, add in adders.items():
        if command in (None, name):
            add(subparsers)
        else:
            subparsers.add_parser(name, help=COMMAND_HELP[name])
    return parser


def _command(argv: list[str]) -> str | None:
    """The subcommand named in ``argv``: its first word that is not an option (the top level's options take no
    value); None when there is none."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(argv) or "")
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except RealfakeError as error:
        print(f"realfake {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
