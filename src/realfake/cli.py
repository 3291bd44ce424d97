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


def _add_mock_survey(subparsers) -> None:
    from realfake.mock import MISMATCHES, MockSettings

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
    from realfake.mock import MockSettings, write_mock_survey

    settings = MockSettings(
        out=args.out,
        bricks=args.bricks,
        size=args.size,
        seed=args.seed,
        mismatch=args.mismatch,
        rsdirs=args.rsdirs,
        fakes_per_rsdir=args.fakes_per_rsdir,
    )
    write_mock_survey(settings, only_bricks=args.only_bricks, table_only=args.table_only)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="realfake",
        description="Do fake galaxies injected into real sky images look real?",
    )
    parser.add_argument("--version", action="version", version=f"realfake {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_mock_survey(subparsers)
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
