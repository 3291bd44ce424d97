"""Power of realfake's verdict against the standard two-sample tests, on the same stamps (issue 24).

For each mock seed and control, the whole workflow runs to the evaluation once per ``--folds`` value (1: the
single held-out split; 5: cross-fitting, every example tested), and the standard tests of alibi-detect
(``scripts/standard_tests.py``, in their own environment ``--bench-python``) run on every example of the
cross-fitted shard set (``scripts/export_stamps.py``), as does realfake's own kernel test (``metrics.json``'s
``mmd``). Prints each method's p-value per control and seed, its detection rate at 0.05 per control, whether it
holds its level on ``none`` (its false alarms against the binomial tail), and its mean wall time (the
workflow's for realfake: mock, cutouts, shards, training and evaluation).

    .venv/bin/python scripts/bench_power.py --seeds 1 2 3 4 5
    .venv/bin/python scripts/bench_power.py --controls size:1.5 --seeds 1 --methods mmd   # one quick row
    .venv/bin/python scripts/bench_power.py --rows power.jsonl --seeds 1 2 --folds 5 --epochs 8 --results-page

``--rows FILE`` keeps every finished row (one JSON object per line, appended as each row ends) and skips the rows
already there, so a long benchmark can be run over several sittings, and its tables printed again
(``--tables-only``) or written into docs/results/power.md between their markers (``--results-page``: the
block of their epochs, :data:`PAGE_BLOCKS`). Each row records its settings and the digest of the workflow,
config and package source it ran (``controls.workflow_identity``); a kept row of other settings or other code is
refused, naming the line and what differs (rows kept before rows carried the digest are refused too: print them
with ``--tables-only``, measure again into a new file).
``--standard-from FILE`` takes the standard tests' p-values from another rows file instead of running them again,
when only realfake's settings changed (say ``--epochs``): they depend on the stamps (the code that made them) and
their own settings only.

The environment of the standard tests (alibi-detect 0.13 pins numpy < 2 and TensorFlow < 2.19, which realfake's
stack does not fit): ``python3 -m venv .venv-bench && .venv-bench/bin/pip install "alibi-detect[tensorflow]==0.13.0"``.
About 2 minutes per single-split run and 5 per 5-fold run on 2 cores, at the controls' training (``--epochs``).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import results_page
from controls import differences, run_control, workflow_identity
from export_stamps import export
from scipy import stats

HERE = Path(__file__).resolve().parent
CONTROLS = ("none", "size:1.25", "size:1.5", "psf:0.75", "noise", "profile")
EVALUATION = ("results/evaluate/metrics.json",)
# The standard tests by their alibi-detect names in the tables (standard_tests.py's --methods in the rows).
LABELS = {"mmd": "MMDDrift", "c2st": "ClassifierDrift", "lkd": "LearnedKernelDrift"}
CROSSFIT = 5  # the folds of the verdict judged against the standard tests (issue 24: K = 5)


def parse_control(text: str) -> tuple[str, float | None]:
    """ "size:1.5" -> ("size", 1.5); "none" -> ("none", None)."""
    mismatch, _, strength = text.partition(":")
    return mismatch, float(strength) if strength else None


def run_row(root: Path, control: str, seed: int, args: argparse.Namespace) -> dict:
    """One control at one seed: realfake at each number of folds, then the standard tests on the last run's
    stamps (every example, when the last is cross-fitted). {method: (p-value, seconds)}."""
    mismatch, strength = parse_control(control)
    mock = {"seed": seed, **({"strength": strength} if strength is not None else {})}
    row: dict[str, tuple[float, float]] = {}
    directory = None
    for folds in args.folds:
        directory = root / f"{control.replace(':', '-')}-seed{seed}-folds{folds}"
        verdict = run_control(
            mismatch, directory, train={"epochs": args.epochs}, targets=EVALUATION, attribution=False,
            folds=folds, **mock,
        )  # fmt: skip
        row[f"realfake K={folds}"] = (verdict["auc_p_value"], verdict["seconds"])
        metrics = json.loads((directory / "results" / "evaluate" / "metrics.json").read_text())
        if metrics.get("mmd"):
            row[f"realfake MMD (K={folds} set)"] = (metrics["mmd"]["p_value"], float("nan"))
    reused = getattr(args, "standard_rows", {}).get((control, seed))
    if args.methods and reused is not None:
        row.update(reused)
        print(f"{control} seed {seed}: standard tests from {args.standard_from}", file=sys.stderr)
    elif args.methods:
        row.update(run_standard(directory, seed, args))
    return row


def run_standard(directory: Path, seed: int, args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """The standard tests on every example of the shard set of the run in ``directory`` (``--standard-epochs`` of
    training for those that train). {method: (p-value, seconds)}."""
    stamps = directory / "stamps.npz"
    export(directory / "results" / "shards", stamps)
    result = subprocess.run(
        [str(args.bench_python), str(HERE / "standard_tests.py"), str(stamps), "--methods", *args.methods,
         "--epochs", str(args.standard_epochs), "--network", args.standard_network, "--seed", str(seed),
         "--out", str(directory / "standard_tests.json")],
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"standard_tests.py failed on {stamps}:\n{result.stderr[-3000:]}")
    results = json.loads((directory / "standard_tests.json").read_text())
    return {entry["method"]: (entry["p_value"], entry["seconds"]) for entry in results}


def tables(rows: dict[tuple[str, int], dict], significance: float = 0.05) -> str:
    methods = list(dict.fromkeys(method for row in rows.values() for method in row))
    names = [LABELS.get(method, method) for method in methods]
    lines = ["| control | seed | " + " | ".join(names) + " |", "| --- | --- |" + " --- |" * len(methods)]
    # The controls in CONTROLS' order (others after them, as first kept), whatever order the rows were run in.
    order = {control: position for position, control in enumerate(CONTROLS)}
    controls = sorted(dict.fromkeys(control for control, _ in rows), key=lambda name: order.get(name, len(order)))
    for (control, seed), row in sorted(rows.items(), key=lambda item: (controls.index(item[0][0]), item[0][1])):
        cells = [f"{row[method][0]:.2g}" if method in row else "" for method in methods]
        lines.append(f"| `{control}` | {seed} | " + " | ".join(cells) + " |")
    lines += ["", f"Detection rate at {significance:g}:", ""]
    standard = [method for method in methods if method in LABELS]
    verdict = f"realfake K={CROSSFIT} >= every standard test"
    judged = f"realfake K={CROSSFIT}" in methods and bool(standard)
    lines += [
        "| control | " + " | ".join(names) + (f" | {verdict} |" if judged else " |"),
        "| --- |" + " --- |" * (len(methods) + judged),
    ]
    for control in controls:
        found = [row for (name, _), row in rows.items() if name == control]
        cells, rates = [], {}
        for method in methods:
            values = [row[method][0] for row in found if method in row]
            detected = sum(value < significance for value in values)
            rates[method] = detected / len(values) if values else math.nan
            cells.append(f"{detected}/{len(values)}" if values else "")
        if judged and parse_control(control)[0] == "none":
            cells.append("(null: a rejection is a false alarm)")
        elif judged:
            ours = rates[f"realfake K={CROSSFIT}"]
            theirs = [rates[method] for method in standard if not math.isnan(rates[method])]
            cells.append("yes" if all(ours >= rate for rate in theirs) else "no")
        lines.append(f"| `{control}` | " + " | ".join(cells) + " |")
    lines += level_table(rows, methods, significance)
    lines += ["", "Mean wall time (s):", ""]
    times = []
    for method in methods:
        seconds = [row[method][1] for row in rows.values() if method in row and row[method][1] == row[method][1]]
        times.append(f"{sum(seconds) / len(seconds):.0f}" if seconds else "-")
    lines += ["| " + " | ".join(names) + " |", "|" + " --- |" * len(methods), "| " + " | ".join(times) + " |"]
    return "\n".join(lines)


def level_table(rows: dict[tuple[str, int], dict], methods: list[str], significance: float) -> list[str]:
    """Whether each method holds its level on the null control: its false alarms over the ``none`` seeds, and the
    chance of that many or more from a test that rejects a true null with probability ``significance`` (the
    binomial tail). A method holds its level unless that chance is below ``significance``."""
    found = [row for (control, _), row in rows.items() if parse_control(control)[0] == "none"]
    if not found:
        return []
    lines = [
        "",
        f"The level on `none`: false alarms, and the chance of at least that many from a test of level "
        f"{significance:g} (binomial tail); below {significance:g}, the method does not hold its level:",
        "",
        "| method | false alarms | chance of at least that many | level held |",
        "| --- | --- | --- | --- |",
    ]
    for method in methods:
        values = [row[method][0] for row in found if method in row]
        if not values:
            continue
        alarms = sum(value < significance for value in values)
        chance = float(stats.binom.sf(alarms - 1, len(values), significance))
        held = "yes" if chance >= significance else "no"
        lines.append(f"| {LABELS.get(method, method)} | {alarms}/{len(values)} | {chance:.2g} | {held} |")
    return lines


def read_rows(path: Path | None, settings: dict | None = None) -> dict[tuple[str, int], dict]:
    """The rows kept in ``path`` by earlier runs (``--rows``): {(control, seed): {method: (p-value, seconds)}};
    a later line for the same control and seed replaces an earlier one. With ``settings``, a row measured with
    other settings (:func:`bench_settings`) is refused: its figures would not be this run's."""
    rows: dict[tuple[str, int], dict] = {}
    if path is None or not path.exists():
        return rows
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            rows[(record["control"], int(record["seed"]))] = {
                method: (float(p), float(seconds) if seconds is not None else math.nan)
                for method, (p, seconds) in record["methods"].items()
            }
        except (ValueError, KeyError, TypeError) as error:
            raise SystemExit(f"{path}:{number}: not a row of bench_power.py ({error})") from error
        if settings is not None and record.get("settings") != settings:
            differ = differences(record.get("settings") or {}, settings)
            raise SystemExit(
                f"{path}:{number}: measured with other settings ({differ}): "
                "give another --rows file, or this one's settings"
            )
    return rows


STANDARD_SETTINGS = ("methods", "standard_epochs", "standard_network", "workflow")


def read_standard(path: Path, settings: dict) -> dict[tuple[str, int], dict]:
    """The standard tests' p-values kept in another rows file (``--standard-from``), to reuse when only
    realfake's settings changed: they depend on the stamps (the mock, its seed, the last ``--folds`` value's shard
    set) and on their own settings, not on realfake's training. A line whose standard-test settings or stamps
    differ from this run's is refused, naming it."""

    def standard(recorded: dict) -> dict:
        return {key: recorded.get(key) for key in STANDARD_SETTINGS} | {
            "stamps_folds": (recorded.get("folds") or [None])[-1]
        }

    wanted = standard(settings)
    kept = read_rows(path)  # refuses a line that is not a row
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        theirs = standard(json.loads(line).get("settings") or {})
        if theirs != wanted:
            differ = differences(theirs, wanted)
            raise SystemExit(f"{path}:{number}: standard tests measured with other settings or stamps ({differ})")
    return {
        key: {method: row[method] for method in settings["methods"]}
        for key, row in kept.items()
        if all(method in row for method in settings["methods"])
    }


def append_row(path: Path, control: str, seed: int, row: dict, settings: dict) -> None:
    """Append one finished row to ``path`` as one JSON line, written whole by one ``write`` (a run killed before it
    leaves no line, never part of one)."""
    methods = {method: [p, None if math.isnan(seconds) else seconds] for method, (p, seconds) in row.items()}
    line = json.dumps({"control": control, "seed": seed, "settings": settings, "methods": methods}) + "\n"
    with path.open("a") as handle:
        handle.write(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--controls", nargs="+", default=list(CONTROLS), help="mismatch[:strength] (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="mock.seed values")
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 5], help="evaluate.folds values (last: the stamps)")
    parser.add_argument("--epochs", type=int, default=16, help="train.epochs (default 16, the demo's)")
    parser.add_argument(
        "--methods", nargs="*", default=["mmd", "c2st", "lkd"], help="standard tests (none: realfake only)"
    )
    parser.add_argument(
        "--standard-epochs", type=int, default=15, help="training epochs of ClassifierDrift and LearnedKernelDrift"
    )
    parser.add_argument(
        "--standard-network", default="compact", help="their CNN (standard_tests.py --network; default compact)"
    )
    parser.add_argument("--bench-python", type=Path, default=HERE.parent / ".venv-bench" / "bin" / "python")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directories")
    parser.add_argument("--rows", type=Path, default=None, help="keep finished rows here; skip those already kept")
    parser.add_argument(
        "--standard-from",
        type=Path,
        default=None,
        help="reuse the standard tests' p-values of this rows file (same stamps and standard settings)",
    )
    parser.add_argument("--tables-only", action="store_true", help="print the tables of --rows; run nothing")
    parser.add_argument(
        "--results-page", action="store_true", help="also write the tables into their block of docs/results/power.md"
    )
    args = parser.parse_args()
    if args.tables_only and args.rows is None:
        parser.error("--tables-only prints the rows of --rows FILE: give it")
    settings = bench_settings(args)
    rows = read_rows(args.rows, None if args.tables_only else settings)
    if not args.tables_only:
        args.standard_rows = read_standard(args.standard_from, settings) if args.standard_from else {}
        run_all(rows, args, parser, settings)
    text = tables(rows)
    print(text)
    if args.results_page:
        block = page_block(args.rows) if args.rows is not None else None
        if block is None:
            sys.exit(f"--results-page: the rows of {args.rows} have no block on docs/results/power.md ({PAGE_BLOCKS})")
        results_page.write_blocks(results_page.RESULTS / "power.md", {block: text})


# power.md's blocks by the training epochs of realfake's rows: the demo's 16, and the CI controls' 8.
PAGE_BLOCKS = {16: "bench_power.py:tables", 8: "bench_power.py:tables-epochs8"}


def page_block(path: Path) -> str | None:
    """The block of docs/results/power.md for the rows kept in ``path``: by their epochs (:data:`PAGE_BLOCKS`);
    None for rows of several epochs, or of epochs without a block."""
    recorded = set()
    for line in path.read_text().splitlines() if path.exists() else []:
        if line.strip():
            recorded.add((json.loads(line).get("settings") or {}).get("epochs"))
    return PAGE_BLOCKS.get(recorded.pop()) if len(recorded) == 1 else None


def bench_settings(args: argparse.Namespace) -> dict:
    """What a kept row was measured with: a row of other settings is not this run's. ``workflow`` is the digest
    of the workflow, config and package source the row ran (:func:`controls.workflow_identity`): the stamps and
    realfake's verdict both come from them."""
    return {
        "folds": args.folds,
        "epochs": args.epochs,
        "methods": args.methods,
        "standard_epochs": args.standard_epochs,
        "standard_network": args.standard_network,
        "workflow": workflow_identity(),
    }


def run_all(
    rows: dict[tuple[str, int], dict], args: argparse.Namespace, parser: argparse.ArgumentParser, settings: dict
) -> None:
    """Run every control at every seed not already in ``rows``, adding each to ``rows`` (and ``--rows``)."""
    if args.methods and not args.bench_python.is_file():
        parser.error(f"--bench-python {args.bench_python} does not exist: make the standard tests' environment (above)")
    root = Path(tempfile.mkdtemp(prefix="realfake-power-", dir=args.workdir))
    try:
        for seed in args.seeds:
            for control in args.controls:
                if (control, seed) in rows:
                    print(f"{control} seed {seed}: kept in {args.rows}", file=sys.stderr)
                    continue
                rows[(control, seed)] = run_row(root, control, seed, args)
                if args.rows is not None:
                    append_row(args.rows, control, seed, rows[(control, seed)], settings)
                cells = ", ".join(f"{method} p = {value[0]:.2g}" for method, value in rows[(control, seed)].items())
                print(f"{control} seed {seed}: {cells}", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"work directories kept in {root}", file=sys.stderr)


if __name__ == "__main__":
    main()
