"""What the test can see: the whole workflow over a grid of mismatch strengths, at one or more mock sizes.

Usage:
    .venv/bin/python scripts/sensitivity.py [--mismatch size psf] [--bricks 12 48] [--out DIR]
        [--size-strengths 1 1.1 1.25 1.5 2] [--psf-strengths 1 0.9 0.75 0.5 0] [--keep] [--resume]
    .venv/bin/python scripts/sensitivity.py --from-table A.csv [B.csv ...] [--folds K] [--results-page]

For each mock size (``mock.bricks``; the demo has 12) and each strength of each
mismatch (``mock.strength``; the identity, 1 for size and psf, is the negative
control ``none`` at that size, run once for both), the default workflow runs
once in a fresh directory (``scripts/controls.py``). Writes to ``--out`` (default ``sensitivity/``):

- ``sensitivity.csv``: one row per run: bricks, mismatch, strength, test
  examples, AUC with its interval and p-value, outcome, minimum detectable AUC,
  wall time (:mod:`realfake.formats.sensitivity`); ``realfake report
  --sensitivity-table`` shows it (``evaluate.sensitivity_table`` in the
  workflow's config);
- ``sensitivity.md``: the table, and per size the sentence docs/results/sensitivity.md quotes:
  "With N test examples the CNN detects half-light radii wrong by >= X% and PSF
  FWHM wrong by >= Y%" (the smallest tested error whose AUC is significantly
  above 0.5, and every larger one too);
- ``sensitivity.png``: AUC with its interval against strength, per mismatch and size;
- ``settings.json``: what the CSV's runs were made with (``--folds``, ``--epochs``, and the SHA-256 of the
  workflow, config and package source they ran: ``controls.workflow_identity``). With ``--resume`` a grid
  keeps the rows of ``--out``/sensitivity.csv and runs only the rest, so that a grid longer than one sitting
  is measured over several; a CSV of other settings is refused, naming the file.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import results_page
from controls import differences, run_control, workflow_identity

from realfake.atomic import atomic_output
from realfake.formats.sensitivity import read_sensitivity_table, write_sensitivity_table
from realfake.report import figures

IDENTITY = {"size": 1.0, "psf": 1.0}
EVALUATION = ("results/evaluate/metrics.json",)
ERROR_WORDS = {"size": "half-light radii", "psf": "PSF FWHM"}
TABLE = "sensitivity.csv"  # in --out: one row per run
SETTINGS = "settings.json"  # beside TABLE in --out: what its runs were made with


def error_percent(mismatch: str, strength: float) -> float:
    """How wrong the fakes are, in percent of the true value: |strength - identity| x 100."""
    return abs(strength - IDENTITY[mismatch]) * 100


def detection_sentence(rows: list[dict], significance: float = 0.05, folds: int = 1) -> str:
    """The sentence of docs/results/sensitivity.md for one mock size: the smallest error from which every larger
    tested one is detected."""
    examples = max(int(row["examples"]) for row in rows)
    parts = []
    for mismatch in ("size", "psf"):
        tested = sorted(
            (row for row in rows if row["mismatch"] == mismatch and error_percent(mismatch, row["strength"]) > 0),
            key=lambda row: error_percent(mismatch, row["strength"]),
        )
        if not tested:
            continue
        detected = [float(row["auc_p_value"]) < significance for row in tested]
        smallest = None
        for position in range(len(tested)):
            if all(detected[position:]):
                smallest = error_percent(mismatch, tested[position]["strength"])
                break
        largest = error_percent(mismatch, tested[-1]["strength"])
        parts.append(
            f"{ERROR_WORDS[mismatch]} wrong by >= {smallest:.0f}%"
            if smallest is not None
            else f"no {ERROR_WORDS[mismatch]} error up to {largest:.0f}%"
        )
    tested = f"With {examples} test examples" if folds == 1 else f"With all {examples} examples tested ({folds} folds)"
    if not parts:  # only the identity (strength 1) measured so far: its level, no error
        return f"{tested} no size or PSF error was measured yet."
    return f"{tested} the CNN detects " + " and ".join(parts) + "."


def examples_to_detect(row: dict) -> float | None:
    """The test examples at which this run's AUC would be detected with the minimum detectable AUC's power (0.8 at
    0.05): the minimum detectable AUC's distance from 0.5 shrinks as 1/sqrt(N), so N x ((MDA - 0.5) / (AUC -
    0.5))^2. An extrapolation from one measured AUC (its interval's width carries over); None when AUC <= 0.5."""
    effect = float(row["auc"]) - 0.5
    if not effect > 0:
        return None
    return int(row["examples"]) * ((float(row["minimum_detectable_auc"]) - 0.5) / effect) ** 2


def reach_sentences(rows: list[dict], significance: float = 0.05) -> list[str]:
    """For each tested error not detected (p >= ``significance``), the examples that would detect it
    (:func:`examples_to_detect`), or that its AUC is not above 0.5."""
    sentences = []
    for row in rows:
        if row["mismatch"] not in IDENTITY or error_percent(row["mismatch"], row["strength"]) == 0:
            continue
        if float(row["auc_p_value"]) < significance:
            continue
        what = f"{ERROR_WORDS[row['mismatch']]} wrong by {error_percent(row['mismatch'], row['strength']):.0f}%"
        needed = examples_to_detect(row)
        measured = f"AUC {float(row['auc']):.3f}, 95% CI {float(row['auc_low']):.3f}-{float(row['auc_high']):.3f}"
        sentences.append(
            f"Not detected at {row['examples']} examples ({row['bricks']} bricks): {what} ({measured}); "
            + (
                f"if that AUC held, about {float(f'{needed:.2g}'):,.0f} test examples would detect it with 80% power."
                if needed
                else "its AUC is not above 0.5."
            )
        )
    return sentences


def markdown(rows: list[dict], folds: int = 1) -> str:
    """The table of ``rows`` and, per mock size, its detection sentence; with ``folds`` >= 2 the sentences say that
    every example was tested, by cross-fitting over that many folds of bricks."""
    lines = [
        "| mock bricks | mismatch | strength | error | test examples | AUC (95% CI) | AUC p-value | outcome "
        "| minimum detectable AUC |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['bricks']} | `{row['mismatch']}` | {row['strength']:g} | "
            f"{error_percent(row['mismatch'], row['strength']):.0f}% | {row['examples']} | {row['auc']:.3f} "
            f"({row['auc_low']:.3f}-{row['auc_high']:.3f}) | {row['auc_p_value']:.2g} | "
            f"{row['outcome'].replace('_', ' ')} | {row['minimum_detectable_auc']:.3f} |"
        )
    sentences = [
        detection_sentence([row for row in rows if row["bricks"] == bricks], folds=folds)
        for bricks in sorted({row["bricks"] for row in rows})
    ]
    if folds > 1:  # the aim of issue 24: how far the demo's size is from radii 10% and PSF FWHM 5% wrong
        sentences += reach_sentences(rows)
    return "\n".join(lines) + "\n\n" + "\n".join(sentences) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mismatch", nargs="+", default=["size", "psf"], choices=sorted(IDENTITY))
    parser.add_argument("--bricks", type=int, nargs="+", default=[12, 48], help="mock sizes (mock.bricks)")
    parser.add_argument("--size-strengths", type=float, nargs="+", default=[1.0, 1.1, 1.25, 1.5, 2.0])
    parser.add_argument("--psf-strengths", type=float, nargs="+", default=[1.0, 0.9, 0.75, 0.5, 0.0])
    parser.add_argument("--out", type=Path, default=Path("sensitivity"))
    parser.add_argument("--workdir", type=Path, default=None, help="where the runs go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    parser.add_argument("--folds", type=int, default=1, help="evaluate.folds (1: the single split; K >= 2: all tested)")
    parser.add_argument(
        "--from-table",
        type=Path,
        nargs="+",
        default=None,
        help="run nothing: write the table, figure and page from these CSVs (their rows in order: one grid per CSV)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="train.epochs (default: the config's, 16)")
    parser.add_argument(
        "--results-page", action="store_true", help="also write the table into its block of docs/results/sensitivity.md"
    )
    parser.add_argument(
        "--resume", action="store_true", help="keep the runs already in --out/sensitivity.csv; run only the rest"
    )
    args = parser.parse_args()
    # The verdict is all the table needs: the runs stop at metrics.json, without the attribution maps.
    settings = {"folds": args.folds if args.folds > 1 else None, "targets": EVALUATION, "attribution": False}
    if args.epochs is not None:
        settings["train"] = {"epochs": args.epochs}
    strengths = {"size": args.size_strengths, "psf": args.psf_strengths}
    args.out.mkdir(parents=True, exist_ok=True)
    if args.from_table is not None:
        rows, read = [], set()
        for table in args.from_table:
            for row in read_sensitivity_table(table).to_dict("records"):
                if run_key(row) in read:
                    sys.exit(
                        f"sensitivity.py: {table}: the run {run_key(row)} (bricks, mismatch, strength) is already read"
                    )
                read.add(run_key(row))
                rows.append(row)
    else:
        # The code and config the runs used too: a table measured by other code is not resumed.
        recorded = {"folds": args.folds, "epochs": args.epochs, "workflow": workflow_identity()}
        try:
            kept = kept_rows(args.out, recorded) if args.resume else []
        except ValueError as error:
            sys.exit(f"sensitivity.py: {error}")
        if not kept:  # measured afresh: a table of earlier settings must not outlive the settings file
            (args.out / TABLE).unlink(missing_ok=True)
        with atomic_output(args.out / SETTINGS) as temporary:
            temporary.write_text(json.dumps(recorded) + "\n")
        rows = run_grid(args, strengths, settings, kept)
    write_outputs(rows, args)


def run_key(row: dict) -> tuple[int, str, float]:
    """Which run of a grid a table's row is: its mock size, mismatch and strength."""
    return int(row["bricks"]), row["mismatch"], float(row["strength"])


def kept_rows(out: Path, recorded: dict) -> list[dict]:
    """The runs of ``out``/sensitivity.csv, if its ``settings.json`` records ``recorded`` (none if there is no CSV);
    ValueError naming the file when the settings differ or were not recorded."""
    table = out / TABLE
    if not table.is_file():
        return []
    try:
        theirs = json.loads((out / SETTINGS).read_text())
    except (OSError, ValueError):
        raise ValueError(f"{table} has no readable {out / SETTINGS}: its settings are unknown, so it is not resumed")
    said = differences(theirs, recorded)
    if said:
        raise ValueError(
            f"{table} was measured with other settings ({out / SETTINGS}): {said}; give another --out, "
            "or leave out --resume to measure afresh"
        )
    return read_sensitivity_table(table).to_dict("records")


def run_grid(
    args: argparse.Namespace, strengths: dict[str, list[float]], runs: dict, kept: list[dict] = ()
) -> list[dict]:
    """Run every strength of every mismatch at every mock size (``runs``: run_control's other settings) not among
    the ``kept`` rows, which come first; write ``--out``/sensitivity.csv after each run, so that a long grid keeps
    what it has measured."""
    root = Path(tempfile.mkdtemp(prefix="realfake-sensitivity-", dir=args.workdir))
    rows = list(kept)
    done = {run_key(row) for row in rows}
    # A kept identity run (the fakes of none) serves every mismatch at its size, as a new one does below.
    identity_runs = {int(row["bricks"]): row for row in rows if float(row["strength"]) == IDENTITY.get(row["mismatch"])}
    try:
        for bricks in args.bricks:
            for mismatch in args.mismatch:
                for strength in strengths[mismatch]:
                    name = f"{bricks}-{mismatch}-{strength:g}"
                    if (bricks, mismatch, strength) in done:
                        print(f"{name}: kept in {args.out / TABLE}", file=sys.stderr, flush=True)
                        continue
                    if strength == IDENTITY[mismatch]:
                        # The identity of every mismatch is the fakes of none, pixel for pixel: one run serves all.
                        if bricks not in identity_runs:
                            identity_runs[bricks] = run_control("none", root / f"{bricks}-none", bricks=bricks, **runs)
                        verdict = {**identity_runs[bricks], "mismatch": mismatch}
                    else:
                        verdict = run_control(mismatch, root / name, strength=strength, bricks=bricks, **runs)
                    row = {**verdict, "bricks": bricks, "strength": strength, "mismatch": mismatch}
                    rows.append(row)
                    said = (
                        f"{verdict['sentence']} ({verdict['seconds']:.0f} s)"
                        if "sentence" in verdict
                        else f"the identity run of {bricks} bricks, kept"
                    )
                    print(f"{name}: {said}", file=sys.stderr, flush=True)
                    write_sensitivity_table(rows, args.out / TABLE)  # as it goes: a long run keeps it
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"run directories kept in {root}", file=sys.stderr)
    return rows


def write_outputs(rows: list[dict], args: argparse.Namespace) -> None:
    """The table and its sentences to ``--out``/sensitivity.md, the figure, and the page's block if asked."""
    (args.out / "sensitivity.md").write_text(markdown(rows, args.folds))
    figures.sensitivity_figure(rows, args.out / "sensitivity.png")
    print(markdown(rows, args.folds))
    if args.results_page:
        block = "sensitivity.py:table" if args.folds == 1 else "sensitivity.py:crossfit"
        results_page.write_blocks(results_page.RESULTS / "sensitivity.md", {block: markdown(rows, args.folds)})
    if any(not math.isfinite(row["auc"]) for row in rows):
        sys.exit("some runs gave no AUC")


if __name__ == "__main__":
    main()
