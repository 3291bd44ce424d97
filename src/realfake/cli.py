"""The ``realfake`` command line: argparse -> settings dataclass -> library call.

Each subcommand is one pipeline stage. The CLI does no work of its own: it
parses arguments, builds the stage's frozen settings dataclass and calls the
library function. A :class:`~realfake.errors.RealfakeError` becomes one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from realfake import __version__
from realfake.errors import RealfakeError
from realfake.progress import say


def _add_mock_survey(subparsers) -> None:
    from realfake.mock.settings import MISMATCHES, MockSettings

    defaults = MockSettings(out=Path("."))
    parser = subparsers.add_parser(
        "mock-survey",
        help="write a small mock survey in the DR5 and obiwan file layouts",
        description=(
            "Render a mock survey with GalSim: a DR5 tree (brick table, coadds, "
            "tractor catalogs) and an obiwan tree (rs dirs with simcats and coadds "
            "holding the same scene plus injected fakes)."
        ),
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--bricks", type=int, default=defaults.bricks, help="number of bricks (default %(default)s)")
    parser.add_argument("--size", type=int, default=defaults.size, help="pixels per side (default %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default %(default)s)")
    parser.add_argument(
        "--mismatch",
        choices=sorted(MISMATCHES),
        default=defaults.mismatch,
        help="how the fakes differ from the real population (default %(default)s)",
    )
    parser.add_argument(
        "--strength",
        type=float,
        default=defaults.strength,
        help="how strong the mismatch is (size: radius factor, standard 2; psf: PSF FWHM factor, standard 0 = "
        "unconvolved; profile: fraction of the way to the wrong Sersic index, standard 1; noise: fraction of the "
        "fakes' own photon noise variance left out, standard 1; background: the rs dirs' sky offset in units of "
        "the per-pixel sky noise, standard 0.1; ivar: fraction of each fake's own photon variance in the rs dirs' "
        "inverse variance, standard 1; undetected: fraction of the undetected fakes kept, standard 1; edges: how "
        "far fakes are kept from uncovered pixels and the image edge, in half stamps, standard 1); the identity "
        "value (size and psf 1, the others 0) gives the fakes of none (default: the standard strength)",
    )
    parser.add_argument(
        "--rsdirs", type=int, default=defaults.rsdirs, help="obiwan rs dirs per brick (default %(default)s)"
    )
    parser.add_argument(
        "--fakes-per-rsdir",
        type=int,
        default=defaults.fakes_per_rsdir,
        help="fakes injected in each rs dir (default %(default)s)",
    )
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

    settings = MockSettings(
        out=args.out,
        bricks=args.bricks,
        size=args.size,
        seed=args.seed,
        mismatch=args.mismatch,
        strength=args.strength,
        rsdirs=args.rsdirs,
        fakes_per_rsdir=args.fakes_per_rsdir,
    )
    run_mock_survey(settings, only_bricks=args.only_bricks, table_only=args.table_only)


def _bands(text: str) -> tuple[str, ...]:
    """ "grz" (or "g,r,z") -> ("g", "r", "z")."""
    return tuple(text.replace(",", "").strip())


def _add_cutouts(subparsers) -> None:
    from realfake.cutouts import DEFAULT_SELECTION, KINDS, CutoutSettings
    from realfake.cutouts.settings import REAL_SOURCES
    from realfake.survey.selection import SELECTIONS

    defaults = CutoutSettings(kind="real", dr5_dir=Path("."))

    parser = subparsers.add_parser(
        "cutouts",
        help="cut 64x64 stamps of real or fake sources of a brick into one HDF5 file",
        description=(
            "Cut stamps (bands then inverse variances, channels-last) around the real "
            "(tractor) or fake (obiwan simcat) sources of one brick, or of every brick "
            "in a list (batch mode; under mpiexec/srun the ranks share the bricks). "
            "Both kinds go through one code path: position from ra, dec through the "
            "coadd WCS, stamp centred on the nearest pixel."
        ),
    )
    parser.add_argument("--kind", choices=KINDS, required=True, help="real (tractor) or sim (obiwan fakes)")
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
    parser.add_argument("--bands", type=_bands, default=("g", "r", "z"), help="bands, e.g. grz or z (default grz)")
    parser.add_argument(
        "--dr5-dir", type=Path, required=True, help="DR5 tree: coadd/, tractor/, survey-bricks.fits[.gz]"
    )
    parser.add_argument(
        "--obiwan-dir",
        type=Path,
        help="obiwan output tree with the rs dirs (needed for --kind sim and for --real-source rsdir)",
    )
    parser.add_argument(
        "--selection",
        choices=sorted(SELECTIONS),
        default=DEFAULT_SELECTION,
        help="named selection of the real sources (default %(default)s)",
    )
    parser.add_argument(
        "--select-fakes",
        action="store_true",
        help="also cut the fakes with the selection, applied to their true simcat values (default: off)",
    )
    parser.add_argument(
        "--pad-edges",
        action="store_true",
        help="keep stamps that leave the image, padded with image 0 and inverse variance 0 (default: drop them)",
    )
    parser.add_argument(
        "--real-source",
        choices=REAL_SOURCES,
        default=defaults.real_source,
        help="cut the real sources from the DR5 coadds (dr5) or from the obiwan rs dir coadds the fakes are in "
        "(rsdir: the same-image control, needs --obiwan-dir; default %(default)s)",
    )
    parser.add_argument(
        "--real-exclusion-radius",
        type=int,
        default=defaults.real_exclusion_radius,
        metavar="PIXELS",
        help="with --real-source rsdir, skip an rs dir for a real source with a fake within this many pixels in x "
        "and y (default %(default)s: half a stamp)",
    )
    parser.set_defaults(func=_run_cutouts)


def _run_cutouts(args: argparse.Namespace) -> None:
    from realfake.cutouts import CutoutSettings, run_cutouts, run_cutouts_batch

    if (args.brick is None) != (args.out is None):
        raise RealfakeError("give --brick with --out, or --bricks with --out-dir")
    settings = CutoutSettings(
        kind=args.kind,
        dr5_dir=args.dr5_dir,
        obiwan_dir=args.obiwan_dir,
        bands=args.bands,
        selection=args.selection,
        select_fakes=args.select_fakes,
        pad_edges=args.pad_edges,
        real_source=args.real_source,
        real_exclusion_radius=args.real_exclusion_radius,
    )
    if args.brick is not None:
        counts = run_cutouts(settings, args.brick, args.out)
        say(f"cutouts {args.kind}", f"brick {args.brick}: {counts.summary()} -> {args.out}")
    else:
        run_cutouts_batch(settings, args.bricks, args.out_dir)


def _add_shards(subparsers) -> None:
    from realfake.shards.settings import BALANCE_CHOICES, DTYPE_CHOICES, SPLIT_CHOICES, ShardSettings

    defaults = ShardSettings(real_dir=Path("."), sim_dir=Path("."), out=Path("."))
    parser = subparsers.add_parser(
        "shards",
        help="shuffle per-brick cutouts into balanced train/validation/test .npy shards",
        description=(
            "Balance the classes (matched in catalog quantities), split by brick or by example into train, "
            f"validation and test (by default {defaults.test_fraction:.0%} test and "
            f"{defaults.validation_fraction:.0%} of the rest validation), shuffle globally across "
            "bricks and write x<split>_N.npy, y<split>_N.npy and <split>_catalog.parquet for each split, and "
            "manifest.json (docs/shards_format.md)."
        ),
    )
    parser.add_argument(
        "--real", type=Path, required=True, help="directory of the real cutouts files (<AAA>/<brick>.h5)"
    )
    parser.add_argument("--sim", type=Path, required=True, help="directory of the fake cutouts files")
    parser.add_argument("--out", type=Path, required=True, help="output directory (replaced when complete)")
    parser.add_argument("--bricks", type=Path, help="use only these bricks' files (text file, one brick per line)")
    parser.add_argument(
        "--dr5-dir", type=Path, help="refuse cutouts files made from another DR5 tree than this one (default: no check)"
    )
    parser.add_argument(
        "--obiwan-dir", type=Path, help="refuse fake cutouts files made from another obiwan tree (default: no check)"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default %(default)s)")
    parser.add_argument(
        "--test-fraction", type=float, default=defaults.test_fraction, help="test share (default %(default)s)"
    )
    parser.add_argument(
        "--validation-fraction",
        type=float,
        default=defaults.validation_fraction,
        help="share of the non-test examples set aside for validation (default %(default)s)",
    )
    parser.add_argument(
        "--shard-size", type=int, default=defaults.shard_size, help="examples per shard (default %(default)s)"
    )
    parser.add_argument(
        "--balance", choices=BALANCE_CHOICES, default=defaults.balance, help="class balance (default %(default)s)"
    )
    parser.add_argument(
        "--match",
        default=",".join(defaults.match),
        help="catalog columns to match the classes in, comma-separated, or 'none' (default %(default)s)",
    )
    parser.add_argument(
        "--match-bin-width",
        type=float,
        default=defaults.match_bin_width,
        help="bin width of the matching, in the columns' units (default %(default)s)",
    )
    parser.add_argument(
        "--split",
        choices=SPLIT_CHOICES,
        default=defaults.split,
        help="brick: whole bricks to one split, so no sky is in two; example: each example on its own "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--dtype",
        choices=DTYPE_CHOICES,
        default=defaults.dtype,
        help="how the stamps are stored: float32, or float16 (half the bytes; inverse variances scaled so that "
        "nothing overflows; the manifest records the scales) (default %(default)s)",
    )
    parser.set_defaults(func=_run_shards)


def _run_shards(args: argparse.Namespace) -> None:
    from realfake.shards.build import run_shards
    from realfake.shards.settings import ShardSettings

    match = () if args.match.strip().lower() in ("", "none") else tuple(name.strip() for name in args.match.split(","))
    settings = ShardSettings(
        real_dir=args.real,
        sim_dir=args.sim,
        out=args.out,
        seed=args.seed,
        test_fraction=args.test_fraction,
        validation_fraction=args.validation_fraction,
        shard_size=args.shard_size,
        balance=args.balance,
        match=match,
        match_bin_width=args.match_bin_width,
        split=args.split,
        dtype=args.dtype,
        bricks_file=args.bricks,
        dr5_dir=args.dr5_dir,
        obiwan_dir=args.obiwan_dir,
    )
    run_shards(settings)


def _integers(text: str) -> tuple[int, ...]:
    """'18,36,54' -> (18, 36, 54)."""
    return tuple(int(item) for item in text.split(","))


def _step_window(text: str) -> tuple[int, int] | None:
    """'START,STOP' -> (START, STOP); 'none' -> None."""
    if text.strip().lower() == "none":
        return None
    start, stop = _integers(text)
    return start, stop


def _add_train(subparsers) -> None:
    from realfake.model.architectures import MODEL_CONFIGS
    from realfake.model.views import VIEWS
    from realfake.training import TrainSettings
    from realfake.training.settings import SELECT_CHOICES

    defaults = TrainSettings(shards=Path("."), out=Path("."))
    parser = subparsers.add_parser(
        "train",
        help="train the classifier on a shard set (resumes from OUT/ckpts)",
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
    parser.add_argument("--shards", type=Path, required=True, help="shard set directory (docs/shards_format.md)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="total epochs (default %(default)s)")
    parser.add_argument(
        "--steps-per-epoch",
        type=int,
        default=defaults.steps_per_epoch,
        help="at most this many steps per epoch (default %(default)s: every whole batch of the training split)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="global batch size (default %(default)s)"
    )
    parser.add_argument(
        "--model", choices=sorted(MODEL_CONFIGS), default=defaults.model.name, help="architecture (default %(default)s)"
    )
    parser.add_argument("--conv-maps", type=_integers, help="override: maps per convolution block, e.g. 18,36,54")
    parser.add_argument("--kernel-size", type=int, help="override: convolution kernel size")
    parser.add_argument("--dense-units", type=_integers, help="override: hidden dense layer widths, e.g. 64")
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help="initial weights and example order (default %(default)s)"
    )
    parser.add_argument(
        "--learning-rate", type=float, default=defaults.learning_rate, help="Adam learning rate (default %(default)s)"
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=defaults.checkpoint_every,
        help="steps between mid-epoch checkpoints (default %(default)s)",
    )
    parser.add_argument(
        "--log-every", type=int, default=defaults.log_every, help="steps between progress lines (default %(default)s)"
    )
    parser.add_argument(
        "--profile-steps",
        type=_step_window,
        default=defaults.profile_steps,
        metavar="START,STOP",
        help="global steps [START, STOP) to profile, or 'none' (default "
        + (",".join(map(str, defaults.profile_steps)) if defaults.profile_steps else "none")
        + ")",
    )
    parser.add_argument(
        "--shuffle-shards",
        type=int,
        default=defaults.shuffle_shards,
        help="shards shuffled together each epoch (default %(default)s)",
    )
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=defaults.augment,
        help="random rotation or reflection of each training stamp each epoch (default %(default)s)",
    )
    parser.add_argument(
        "--view",
        choices=VIEWS,
        default=defaults.view,
        help="what the CNN sees of each stamp: full, or a restricted view for the shortcut audit (default %(default)s)",
    )
    parser.add_argument(
        "--select",
        choices=SELECT_CHOICES,
        default=defaults.select,
        help="weights written to model.keras: the epoch with the lowest validation loss, or the last "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--keep-checkpoints", type=int, default=defaults.keep_checkpoints, help="checkpoints kept (default %(default)s)"
    )
    parser.add_argument(
        "--intra-op-threads",
        type=int,
        default=defaults.intra_op_threads,
        help="TensorFlow intra-op threads (0: TensorFlow's default)",
    )
    parser.add_argument(
        "--inter-op-threads",
        type=int,
        default=defaults.inter_op_threads,
        help="TensorFlow inter-op threads (0: TensorFlow's default)",
    )
    parser.add_argument(
        "--deterministic",
        action=argparse.BooleanOptionalAction,
        default=defaults.deterministic,
        help="deterministic ops, reproducible bit for bit (default %(default)s)",
    )
    parser.add_argument("--jit-compile", action="store_true", help="XLA-compile the forward and backward pass")
    parser.add_argument(
        "--cluster-port",
        type=int,
        default=defaults.cluster_port,
        help="first worker port when the cluster comes from SLURM (default %(default)s)",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=defaults.startup_timeout,
        metavar="SECONDS",
        help="multi-worker: how long a task waits for the others to start before it stops, naming those "
        "missing (default %(default)s)",
    )
    parser.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> None:
    from realfake.model.architectures import model_config
    from realfake.training import TrainSettings, run_train

    settings = TrainSettings(
        shards=args.shards,
        out=args.out,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        model=model_config(
            args.model, conv_maps=args.conv_maps, kernel_size=args.kernel_size, dense_units=args.dense_units
        ),
        seed=args.seed,
        learning_rate=args.learning_rate,
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
        profile_steps=args.profile_steps,
        shuffle_shards=args.shuffle_shards,
        augment=args.augment,
        select=args.select,
        view=args.view,
        keep_checkpoints=args.keep_checkpoints,
        intra_op_threads=args.intra_op_threads,
        inter_op_threads=args.inter_op_threads,
        deterministic=args.deterministic,
        jit_compile=args.jit_compile,
        cluster_port=args.cluster_port,
        startup_timeout=args.startup_timeout,
    )
    run_train(settings)


def _view_file(text: str) -> tuple[str, Path]:
    """'ring_only=results/evaluate/ring_only/predictions.parquet' -> ("ring_only", Path(...))."""
    view, separator, path = text.partition("=")
    if not separator or not view or not path:
        raise argparse.ArgumentTypeError(f"{text!r} is not VIEW=FILE")
    return view, Path(path)


def _add_predict(subparsers, batch_size: int) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="run a trained model over the test split and write its predictions",
        description=(
            "Run the trained model over the test shards, one batch at a time, and write a parquet file: per test "
            "example its catalog row, stamp statistics and p_fake, with the shard set and the model's view "
            "recorded (realfake evaluate --predictions and --audit read it)."
        ),
    )
    parser.add_argument("--shards", type=Path, required=True, help="shard set directory (docs/shards_format.md)")
    parser.add_argument("--model", type=Path, required=True, help="trained model (model.keras from realfake train)")
    parser.add_argument("--out", type=Path, required=True, help="output file (.parquet)")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="stamps per batch (default %(default)s)")
    parser.add_argument(
        "--part",
        default="1-of-1",
        metavar="I-of-N",
        help="predict only the I-th of N near-equal runs of consecutive test shards (a scattered prediction; "
        "realfake evaluate --predictions takes the N files; default %(default)s: all)",
    )
    parser.set_defaults(func=_run_predict)


def _run_predict(args: argparse.Namespace) -> None:
    from realfake.evaluation.predict import PredictSettings, run_predict

    run_predict(
        PredictSettings(shards=args.shards, model=args.model, out=args.out, batch_size=args.batch_size, part=args.part)
    )


def _add_evaluate(subparsers) -> None:
    from realfake.evaluation.evaluate import EvaluateSettings, StatisticsSettings

    defaults = EvaluateSettings(shards=Path("."), model=Path("."), out=Path("."))
    statistics = StatisticsSettings()
    _add_predict(subparsers, defaults.batch_size)
    parser = subparsers.add_parser(
        "evaluate",
        help="predict the test split and test whether the CNN tells fakes from reals",
        description=(
            "Run the trained model over the test shards (one batch at a time) and write predictions.parquet, "
            "metrics.json (the verdict: the AUC with its interval and one-sided Mann-Whitney test, the outcome "
            "against the tolerance, the minimum detectable AUC, the accuracy's binomial test; breakdowns in bins; "
            "shortcut baselines) and breakdowns.csv."
        ),
    )
    parser.add_argument("--shards", type=Path, required=True, help="shard set directory (docs/shards_format.md)")
    parser.add_argument(
        "--model",
        type=Path,
        help="trained model (model.keras): run over the test split unless --predictions is given; its attribution "
        "maps are computed either way",
    )
    parser.add_argument(
        "--predictions",
        type=Path,
        nargs="+",
        help="its test predictions, from realfake predict: one file, or the files of its parts (--part)",
    )
    parser.add_argument(
        "--audit",
        type=_view_file,
        action="append",
        default=[],
        metavar="VIEW=FILE",
        help="predictions of a CNN trained on a restricted view (realfake train --view), for the shortcut "
        "audit; repeatable, and once per part for the parts of a scattered prediction",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--significance", type=float, default=statistics.significance, help="test level (default %(default)s)"
    )
    parser.add_argument(
        "--bootstrap", type=int, default=statistics.bootstrap, help="bootstrap resamples (default %(default)s)"
    )
    parser.add_argument("--bins", type=int, default=statistics.bins, help="quantile bins (default %(default)s)")
    parser.add_argument(
        "--correction",
        choices=("holm", "bh"),
        default=statistics.correction,
        help="multiple-testing correction over bins: holm or bh (Benjamini-Hochberg) (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=statistics.seed, help="random seed (default %(default)s)")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=statistics.tolerance,
        help="the AUC excess over 0.5 that does not matter: the verdict compares the AUC interval with "
        "0.5 + tolerance (default %(default)s)",
    )
    parser.add_argument(
        "--power",
        type=float,
        default=statistics.power,
        help="power of the minimum detectable AUC (default %(default)s)",
    )
    parser.add_argument(
        "--baseline-rows",
        type=int,
        default=statistics.baseline_rows,
        help="at most this many training examples (a seeded sample stratified by class) train the shortcut "
        "baselines (default %(default)s)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="stamps per batch (default %(default)s)"
    )
    parser.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> None:
    from realfake.evaluation.evaluate import EvaluateSettings, StatisticsSettings, run_evaluate

    settings = EvaluateSettings(
        shards=args.shards,
        model=args.model,
        predictions=tuple(args.predictions) if args.predictions else None,
        audit=tuple(args.audit),
        out=args.out,
        batch_size=args.batch_size,
        statistics=StatisticsSettings(
            significance=args.significance,
            bootstrap=args.bootstrap,
            seed=args.seed,
            bins=args.bins,
            correction=args.correction,
            tolerance=args.tolerance,
            power=args.power,
            baseline_rows=args.baseline_rows,
        ),
    )
    run_evaluate(settings)


def _add_report(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write the figures, mosaics, galleries and index.html",
        description=(
            "Training curves, ROC, accuracy against g magnitude, the original obiwan write-up's Figure 1 mosaics "
            "at five brightness percentiles, galleries of the CNN's surest mistakes, and index.html "
            "(opens with no network)."
        ),
    )
    parser.add_argument("--evaluate", type=Path, required=True, help="directory of realfake evaluate's outputs")
    parser.add_argument("--shards", type=Path, required=True, help="the shard set that was evaluated")
    parser.add_argument("--train", type=Path, required=True, help="directory of realfake train's outputs")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--sensitivity-table",
        type=Path,
        help="a sensitivity table (CSV from scripts/sensitivity.py) to show: what the test can detect",
    )
    parser.set_defaults(func=_run_report)


def _run_report(args: argparse.Namespace) -> None:
    from realfake.report import ReportSettings, run_report

    run_report(
        ReportSettings(
            evaluate=args.evaluate,
            shards=args.shards,
            train=args.train,
            out=args.out,
            sensitivity_table=args.sensitivity_table,
        )
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="realfake",
        description="Do fake galaxies injected into real sky images look real?",
    )
    parser.add_argument("--version", action="version", version=f"realfake {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_mock_survey(subparsers)
    _add_cutouts(subparsers)
    _add_shards(subparsers)
    _add_train(subparsers)
    _add_evaluate(subparsers)
    _add_report(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except RealfakeError as error:
        print(f"realfake {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
