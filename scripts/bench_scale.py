"""Survey scale, measured: shards, train, predict, evaluate and report at growing numbers of examples.

Usage: .venv/bin/python scripts/bench_scale.py [--examples 20000 200000 1000000] [--stamp-size 16]
    [--steps 60] [--workdir DIR] [--keep]

For each N, synthetic cutouts files are written (bricks of 600 stamps per kind,
the full cutouts catalog of bands g, r, z with realistic value ranges, so the
per-example bookkeeping - catalogs, index, predictions, statistics - is the
real one), then every stage after cutouts runs through the `realfake` command,
each as a child process:

- ``shards`` (a brick split, measured matching; no validation split, so that
  training below is a fixed number of steps and nothing else);
- ``train`` (``--epochs 1 --steps-per-epoch STEPS``: a fixed number of steps, so
  its cost is per step and must not grow with N);
- ``predict``, ``evaluate`` (with ``--model``: the attribution maps too) and
  ``report``.

Per stage: wall and CPU time (the child's user + system time, from wait4), its
peak resident memory (ru_maxrss, the VmHWM), and the bytes it read and wrote
(/proc/<pid>/io rchar and wchar, polled). Prints a table and, per stage, the
growth ratio (time(N_last) / time(N_first)) / (N_last / N_first) (for train:
time(N_last) / time(N_first), a fixed number of steps): 1 when the cost per
example is flat; the target is at most 1.1, with peak memory flat in N except a
documented index of a few bytes per example.

Stamps are S x S x 6 float32 with S = ``--stamp-size`` (16 by default: 1 million
examples are then 6 GB of cutouts and 6 GB of shards, which this machine's disk
holds; 64 x 64 would be 98 GB each). What is scaled is the pixels per example, the
same at every N, so the growth ratios compare like with like; the bookkeeping is
full size. ``--stamp-size 64`` runs the real size where the disk allows.
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

import numpy as np
import pandas as pd
import results_page

from realfake.conventions import channel_names
from realfake.formats.cutouts import catalog_columns, column_descriptions, write_cutouts_file

BANDS = ("g", "r", "z")
STAMPS_PER_BRICK = 600  # per kind
STAGES = ("shards", "train", "predict", "evaluate", "report")


def brick_name(number: int) -> str:
    """A distinct DR5-style brick name for synthetic brick ``number``."""
    ra, dec = number % 3600, number // 3600
    return f"{ra:04d}p{dec % 1000:03d}"


def synthetic_catalog(rng: np.random.Generator, kind: str, brick: str, count: int) -> pd.DataFrame:
    """A cutouts catalog of ``count`` sources with every column of bands g, r, z and realistic value ranges."""
    g = rng.uniform(21.0, 24.5, count)
    magnitudes = {"g": g, "r": g - rng.normal(0.5, 0.2, count), "z": g - rng.normal(1.3, 0.3, count)}
    x, y = rng.uniform(32, 3568, count), rng.uniform(32, 3568, count)
    centre_x, centre_y = np.floor(x + 0.5), np.floor(y + 0.5)
    table = {
        "id": np.arange(count, dtype=np.int64),
        "brickname": [brick] * count,
        "rsdir": ["rs0" if kind == "sim" else ""] * count,
        "ra": rng.uniform(0, 360, count),
        "dec": rng.uniform(-10, 30, count),
        "x": x,
        "y": y,
        "centre_x": centre_x,
        "centre_y": centre_y,
        "offset_x": x - centre_x,
        "offset_y": y - centre_y,
    }
    transmission = rng.uniform(0.85, 0.99, count)
    for band in BANDS:
        table[f"flux_{band}"] = 10 ** ((22.5 - magnitudes[band]) / 2.5) * transmission
        table[f"mw_transmission_{band}"] = transmission
        table[f"mag_dered_{band}"] = magnitudes[band]
    types = rng.choice(["REX", "EXP", "DEV", "PSF"], count, p=[0.5, 0.3, 0.1, 0.1])
    table["type"] = types
    table["size"] = np.where(types == "PSF", 0.0, rng.uniform(0.2, 1.2, count))
    table["sersic_n"] = np.where(types == "DEV", 4.0, 1.0)
    table["e1"] = rng.normal(0, 0.1, count)
    table["e2"] = rng.normal(0, 0.1, count)
    table["measured"] = np.ones(count, dtype=bool)
    for band in BANDS:
        table[f"measured_mag_dered_{band}"] = magnitudes[band] + rng.normal(0, 0.05, count)
    table["measured_type"] = types
    table["measured_size"] = table["size"] * rng.uniform(0.9, 1.1, count)
    table["detected"] = np.ones(count, dtype=bool)
    table["distance_to_no_coverage"] = rng.uniform(0, 64, count)
    catalog = pd.DataFrame(table)
    return catalog[catalog_columns(BANDS)]


def synthetic_stamps(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """Sky noise (nanomaggies) with a faint central source, and per-stamp inverse variances of DR5 depths."""
    stamps = np.empty((count, size, size, 6), dtype=np.float32)
    stamps[..., :3] = rng.normal(0.0, 0.01, (count, size, size, 3))
    stamps[:, size // 2, size // 2, :3] += rng.uniform(0.0, 0.2, (count, 3)).astype(np.float32)
    depth = np.array([5e4, 1.5e4, 2.5e3], dtype=np.float32) * rng.uniform(0.5, 2.0, (count, 1, 1, 3))
    stamps[..., 3:] = depth * rng.uniform(0.98, 1.02, (count, size, size, 3)).astype(np.float32)
    return stamps


def write_cutouts(root: Path, examples: int, size: int) -> None:
    """Half real, half fake cutouts files of :data:`STAMPS_PER_BRICK` stamps per brick."""
    rng = np.random.default_rng(examples)
    per_kind = examples // 2
    bricks = int(np.ceil(per_kind / STAMPS_PER_BRICK))
    descriptions = column_descriptions(BANDS)
    for kind in ("real", "sim"):
        for number in range(bricks):
            count = min(STAMPS_PER_BRICK, per_kind - number * STAMPS_PER_BRICK)
            brick = brick_name(number)
            attributes = {"kind": kind, "bands": list(BANDS), "channels": channel_names(BANDS), "stamp_size": size,
                          "brickname": brick, "real_source": "dr5"}  # fmt: skip
            write_cutouts_file(
                root / kind / brick[:3] / f"{brick}.h5",
                synthetic_stamps(rng, count, size),
                synthetic_catalog(rng, kind, brick, count),
                attributes,
                descriptions,
            )


def run_stage(command: list[str], cwd: Path, log: Path) -> dict:
    """Run ``command``; return its wall and CPU seconds, peak RSS (MiB) and bytes read and written."""
    start = time.perf_counter()
    with open(log, "w") as handle:
        process = subprocess.Popen(command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT)
    io = {"rchar": 0, "wchar": 0}
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        try:
            for line in Path(f"/proc/{process.pid}/io").read_text().splitlines():
                key, value = line.split(":")
                if key in io:
                    io[key] = int(value)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}); see {log}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024,
            "read_mib": io["rchar"] / 2**20, "written_mib": io["wchar"] / 2**20}  # fmt: skip


def stage_commands(realfake: str, steps: int) -> dict[str, list[str]]:
    return {
        "shards": [realfake, "shards", "--real", "cutouts/real", "--sim", "cutouts/sim", "--out", "shards",
                   "--validation-fraction", "0"],
        "train": [realfake, "train", "--shards", "shards", "--out", "train", "--epochs", "1", "--steps-per-epoch",
                  str(steps), "--profile-steps", "none", "--select", "last", "--intra-op-threads", "2"],
        "predict": [realfake, "predict", "--shards", "shards", "--model", "train/model.keras", "--out",
                    "evaluate/full/predictions.parquet"],
        "evaluate": [realfake, "evaluate", "--shards", "shards", "--predictions", "evaluate/full/predictions.parquet",
                     "--model", "train/model.keras", "--out", "evaluate"],
        "report": [realfake, "report", "--evaluate", "evaluate", "--shards", "shards", "--train", "train", "--out",
                   "report"],
    }  # fmt: skip


def examples_of(stage: str, manifest: dict, steps: int) -> int:
    """What a stage's cost is per: every example (shards), a training step (train), a test example (the rest)."""
    if stage == "shards":
        return manifest["available"]["real"] + manifest["available"]["fake"]
    if stage == "train":
        return steps
    return manifest["splits"]["test"]["examples"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, nargs="+", default=[20_000, 200_000, 1_000_000])
    parser.add_argument("--stamp-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=60, help="training steps (batch 32) at every size")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directories")
    parser.add_argument(
        "--results-page", action="store_true", help="also write both tables into their blocks of docs/results/scale.md"
    )
    args = parser.parse_args()
    realfake = str(Path(sys.executable).parent / "realfake")
    root = Path(tempfile.mkdtemp(prefix="realfake-scale-", dir=args.workdir))
    rows = []
    try:
        for examples in args.examples:
            directory = root / str(examples)
            start = time.perf_counter()
            write_cutouts(directory / "cutouts", examples, args.stamp_size)
            print(f"{examples}: cutouts written in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
            for stage, command in stage_commands(realfake, args.steps).items():
                result = run_stage(command, directory, directory / f"{stage}.log")
                manifest = json.loads((directory / "shards" / "manifest.json").read_text())
                per = examples_of(stage, manifest, args.steps)
                rows.append({"examples": examples, "stage": stage, "per": per, **result})
                print(f"{examples} {stage}: {result['wall']:.1f} s wall, {result['cpu']:.1f} s CPU, "
                      f"{result['rss_mib']:.0f} MiB peak", file=sys.stderr, flush=True)  # fmt: skip
            if not args.keep:
                shutil.rmtree(directory, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"work directories kept in {root}", file=sys.stderr)
    print(table(rows))
    print()
    print(growth(rows))
    if args.results_page:
        results_page.write_blocks(
            results_page.RESULTS / "scale.md",
            {"bench_scale.py:stages": table(rows), "bench_scale.py:growth": growth(rows)},
        )


def table(rows: list[dict]) -> str:
    lines = [
        "| examples | stage | per | wall s | wall µs per | CPU µs per | peak RSS MiB | read MiB | written MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        unit = "step" if row["stage"] == "train" else ("example" if row["stage"] == "shards" else "test example")
        lines.append(
            f"| {row['examples']} | {row['stage']} | {row['per']} {unit}s | {row['wall']:.1f} "
            f"| {1e6 * row['wall'] / row['per']:.0f} | {1e6 * row['cpu'] / row['per']:.0f} | {row['rss_mib']:.0f} "
            f"| {row['read_mib']:.0f} | {row['written_mib']:.0f} |"
        )
    return "\n".join(lines)


def growth(rows: list[dict]) -> str:
    """Per stage: (time(N_b)/time(N_a)) / (per(N_b)/per(N_a)) for wall and CPU, and the RSS ratio, from the
    first size to the last and from the last but one to the last. A stage's fixed start-up (importing
    TensorFlow: seconds) dominates at small N and flatters the first ratio; the second is the marginal one."""
    lines = [
        "| stage | N a -> b | wall growth | CPU growth | peak RSS b / a | peak RSS b - a, bytes per example |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for stage in STAGES:
        stage_rows = [row for row in rows if row["stage"] == stage]
        pairs = [(stage_rows[0], stage_rows[-1])] if len(stage_rows) > 1 else []
        if len(stage_rows) > 2:
            pairs.append((stage_rows[-2], stage_rows[-1]))
        for first, last in pairs:
            scale = last["per"] / first["per"]
            extra = (last["rss_mib"] - first["rss_mib"]) * 2**20 / max(last["examples"] - first["examples"], 1)
            lines.append(
                f"| {stage} | {first['examples']} -> {last['examples']} | {last['wall'] / first['wall'] / scale:.2f} "
                f"| {last['cpu'] / first['cpu'] / scale:.2f} | {last['rss_mib'] / first['rss_mib']:.2f} | {extra:.0f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
