"""Compare two finished workflow directories: are their outputs the same, byte for byte?

Usage: .venv/bin/python scripts/compare_runs.py BEFORE AFTER

For a change that must not change behaviour (a refactoring), run the workflow
(``make demo``, or ``scripts/controls.py --mismatch psf --keep``) in a clone of
the old commit and of the new one, then compare the two directories. Prints, per
group of outputs (shards, report, predictions, the evaluation's arrays and
breakdowns, history.json), how many files are byte-identical, names those that
differ, and every key of ``results/evaluate/metrics.json`` whose value differs.
``model.keras`` is compared by its weights (``model_sha256`` in metrics.json):
its file records when it was saved. Exits 1 when anything differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

GROUPS = {
    "shards": "results/shards/**/*",
    "report": "results/report/**/*",
    "predictions": "results/evaluate/**/*.parquet",
    "evaluation arrays": "results/evaluate/*.npz",
    "breakdowns": "results/evaluate/*.csv",
    "history": "results/train/*/history.json",
}


def digests(root: Path, pattern: str) -> dict[str, str]:
    """SHA-256 of every file under ``root`` matching ``pattern``, by its path relative to ``root``."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.glob(pattern))
        if path.is_file()
    }


def compare(before: Path, after: Path) -> list[str]:
    """One line per group and per differing metrics key; the lines of differences start with 'DIFFERS'."""
    lines = []
    for group, pattern in GROUPS.items():
        old, new = digests(before, pattern), digests(after, pattern)
        differing = sorted(set(old) ^ set(new) | {name for name in set(old) & set(new) if old[name] != new[name]})
        identical = len(old) - len(set(old) & set(differing))
        status = "DIFFERS" if differing else "same"
        lines.append(f"{status} {group}: {identical} of {len(old)} files byte-identical; differ: {differing}")
    metrics = [json.loads((root / "results/evaluate/metrics.json").read_text()) for root in (before, after)]
    for key in sorted(set(metrics[0]) | set(metrics[1])):
        if metrics[0].get(key) != metrics[1].get(key):
            lines.append(
                f"DIFFERS metrics.json {key}: {str(metrics[0].get(key))[:200]} | {str(metrics[1].get(key))[:200]}"
            )
    verdict = metrics[1]["verdict"]
    lines.append(f"verdict after: AUC {verdict['auc']!r}, p = {verdict['auc_p_value']!r}, {verdict['outcome']}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="a finished workflow directory (holding results/)")
    parser.add_argument("after", type=Path, help="another one, to compare with the first")
    args = parser.parse_args()
    for root in (args.before, args.after):
        if not (root / "results/evaluate/metrics.json").is_file():
            print(f"{root}: no results/evaluate/metrics.json (run the workflow there first)", file=sys.stderr)
            return 2
    lines = compare(args.before, args.after)
    print("\n".join(lines))
    return 1 if any(line.startswith("DIFFERS") for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
