"""The control experiments: the whole workflow on the default mock survey, once per mismatch.

Usage: .venv/bin/python scripts/controls.py [--mismatch none psf size ...] [--bricks N] [--seeds 1 2 ...]
    [--workdir DIR] [--keep]

For each mismatch, a copy of the workflow (Snakefile, workflow/, config/,
profiles/) runs `snakemake --profile profiles/local` with the default config
except ``mock.mismatch``, and the verdict is read from
``results/evaluate/metrics.json``. Prints a Markdown table (the AUC with its
95% interval and Mann-Whitney p-value, the outcome against the tolerance, the
minimum detectable AUC, the accuracy with its interval and binomial p-value,
test examples, wall time): the table in the README comes from this script.
``none`` is the negative control (never distinguishable).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPOSITORY = Path(__file__).resolve().parents[1]
WORKFLOW_PARTS = ["Snakefile", "workflow", "config", "profiles", "environment.yml"]
DEFAULT_MISMATCHES = ["none", "psf", "size", "profile", "noise"]


def run_control(mismatch: str, workdir: Path, **mock: object) -> dict:
    """Run the workflow with ``mock.mismatch = mismatch`` (and any other ``mock`` keys) in ``workdir``;
    return the verdict with ``mismatch`` and ``seconds`` added."""
    return {"mismatch": mismatch, **run_workflow(workdir, {"mock": {"mismatch": mismatch, **mock}})}


def run_workflow(workdir: Path, overrides: dict) -> dict:
    """Copy the workflow into ``workdir`` and run it with the default config and ``overrides``;
    return the verdict of results/evaluate/metrics.json with the wall time (``seconds``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        source = REPOSITORY / part
        if source.is_dir():
            shutil.copytree(source, workdir / part, dirs_exist_ok=True)
        else:
            shutil.copy2(source, workdir / part)
    override = workdir / "control.yaml"
    override.write_text(yaml.safe_dump(overrides))
    environment = dict(os.environ)
    binaries = Path(sys.executable).parent
    environment["PATH"] = f"{binaries}{os.pathsep}{environment.get('PATH', '')}"
    start = time.perf_counter()
    result = subprocess.run(
        [str(binaries / "snakemake"), "--profile", "profiles/local", "--configfile", str(override)],
        cwd=workdir,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"workflow with {overrides} failed:\n{result.stdout[-5000:]}")
    metrics = json.loads((workdir / "results" / "evaluate" / "metrics.json").read_text())
    return {"seconds": elapsed, **metrics["verdict"]}


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| mismatch | AUC (95% CI) | AUC p-value | outcome | minimum detectable AUC | test accuracy (95% CI) "
        "| accuracy p-value | test examples | wall time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| `{row['mismatch']}` | {row['auc']:.3f} ({row['auc_low']:.3f}-{row['auc_high']:.3f}) "
            f"| {row['auc_p_value']:.2g} | {row['outcome'].replace('_', ' ')} | {row['minimum_detectable_auc']:.3f} "
            f"| {row['accuracy']:.3f} ({row['accuracy_low']:.3f}-{row['accuracy_high']:.3f}) "
            f"| {row['accuracy_p_value']:.2g} | {row['examples']} | {row['seconds']:.0f} s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mismatch", nargs="+", default=DEFAULT_MISMATCHES)
    parser.add_argument("--bricks", type=int, default=None, help="mock.bricks (default: the config's, 4)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[None], help="mock.seed values (default: the config's)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directories")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="realfake-controls-", dir=args.workdir))
    rows = []
    try:
        for seed in args.seeds:
            for mismatch in args.mismatch:
                mock = {key: value for key, value in (("bricks", args.bricks), ("seed", seed)) if value is not None}
                name = "-".join([mismatch, *(f"{key}{value}" for key, value in mock.items())])
                row = run_control(mismatch, root / name, **mock)
                row["mismatch"] = name
                print(f"{name}: {row['sentence']} ({row['seconds']:.0f} s)", file=sys.stderr, flush=True)
                rows.append(row)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"work directories kept in {root}", file=sys.stderr)
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
