"""Power of realfake's verdict against the standard two-sample tests, on the same stamps (issue 24).

For each mock seed and control, the whole workflow runs to the evaluation once per ``--folds`` value (1: the
single held-out split; 5: cross-fitting, every example tested), and the standard tests of alibi-detect
(``scripts/standard_tests.py``, in their own environment ``--bench-python``) run on every example of the
cross-fitted shard set (``scripts/export_stamps.py``), as does realfake's own kernel test (``metrics.json``'s
``mmd``). Prints each method's p-value per control and seed, its detection rate at 0.05 per control, and its
mean wall time (the workflow's for realfake: mock, cutouts, shards, training and evaluation).

    .venv/bin/python scripts/bench_power.py --seeds 1 2 3 4 5
    .venv/bin/python scripts/bench_power.py --controls size:1.5 --seeds 1 --methods mmd   # one quick row

The environment of the standard tests (alibi-detect 0.13 pins numpy < 2 and TensorFlow < 2.19, which realfake's
stack does not fit): ``python3 -m venv .venv-bench && .venv-bench/bin/pip install "alibi-detect[tensorflow]==0.13.0"``.
About 2 minutes per single-split run and 5 per 5-fold run on 2 cores, at the controls' training (``--epochs``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from controls import run_control
from export_stamps import export

HERE = Path(__file__).resolve().parent
CONTROLS = ("none", "size:1.25", "size:1.5", "psf:0.75", "noise", "profile")
EVALUATION = ("results/evaluate/metrics.json",)


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
    if args.methods:
        stamps = directory / "stamps.npz"
        export(directory / "results" / "shards", stamps)
        result = subprocess.run(
            [str(args.bench_python), str(HERE / "standard_tests.py"), str(stamps), "--methods", *args.methods,
             "--seed", str(seed), "--out", str(directory / "standard_tests.json")],
            capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"standard_tests.py failed on {stamps}:\n{result.stderr[-3000:]}")
        for entry in json.loads((directory / "standard_tests.json").read_text()):
            row[entry["method"]] = (entry["p_value"], entry["seconds"])
    return row


def tables(rows: dict[tuple[str, int], dict], significance: float = 0.05) -> str:
    methods = list(dict.fromkeys(method for row in rows.values() for method in row))
    lines = ["| control | seed | " + " | ".join(methods) + " |", "| --- | --- |" + " --- |" * len(methods)]
    for (control, seed), row in rows.items():
        cells = [f"{row[method][0]:.2g}" if method in row else "" for method in methods]
        lines.append(f"| `{control}` | {seed} | " + " | ".join(cells) + " |")
    lines += ["", f"Detection rate at {significance:g}:", ""]
    lines += ["| control | " + " | ".join(methods) + " |", "| --- |" + " --- |" * len(methods)]
    for control in dict.fromkeys(control for control, _ in rows):
        found = [row for (name, _), row in rows.items() if name == control]
        cells = []
        for method in methods:
            values = [row[method][0] for row in found if method in row]
            detected = sum(value < significance for value in values)
            cells.append(f"{detected}/{len(values)}" if values else "")
        lines.append(f"| `{control}` | " + " | ".join(cells) + " |")
    lines += ["", "Mean wall time (s):", ""]
    times = []
    for method in methods:
        seconds = [row[method][1] for row in rows.values() if method in row and row[method][1] == row[method][1]]
        times.append(f"{sum(seconds) / len(seconds):.0f}" if seconds else "-")
    lines += ["| " + " | ".join(methods) + " |", "|" + " --- |" * len(methods), "| " + " | ".join(times) + " |"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--controls", nargs="+", default=list(CONTROLS), help="mismatch[:strength] (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="mock.seed values")
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 5], help="evaluate.folds values (last: the stamps)")
    parser.add_argument("--epochs", type=int, default=16, help="train.epochs (default 16, the demo's)")
    parser.add_argument(
        "--methods", nargs="*", default=["mmd", "c2st", "lkd"], help="standard tests (none: realfake only)"
    )
    parser.add_argument("--bench-python", type=Path, default=HERE.parent / ".venv-bench" / "bin" / "python")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directories")
    args = parser.parse_args()
    if args.methods and not args.bench_python.is_file():
        parser.error(f"--bench-python {args.bench_python} does not exist: make the standard tests' environment (above)")
    root = Path(tempfile.mkdtemp(prefix="realfake-power-", dir=args.workdir))
    rows = {}
    try:
        for seed in args.seeds:
            for control in args.controls:
                rows[(control, seed)] = run_row(root, control, seed, args)
                cells = ", ".join(f"{method} p = {value[0]:.2g}" for method, value in rows[(control, seed)].items())
                print(f"{control} seed {seed}: {cells}", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"work directories kept in {root}", file=sys.stderr)
    print(tables(rows))


if __name__ == "__main__":
    main()
