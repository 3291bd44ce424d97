"""Benchmark the shards stage: throughput against a plain copy, and peak memory at two sizes.

Usage: .venv/bin/python scripts/bench_shards.py [--examples 3000 12000] [--workdir DIR]

For each size, synthetic 64 x 64 x 6 cutouts files (bricks of 500 stamps per
kind) are written, then in the same run: (a) a plain sequential copy of the
same input files (shutil.copyfile, best of two) and (b) `run_shards` in a
child process that reports its own peak resident memory (VmHWM). Both timings
end with os.sync(), so both include writing the bytes to disk: without it the
copy measures the page cache at small sizes and the disk at large ones. Prints the throughput ratio
shards / copy (target at least 0.5) and the peak RSS per size (target: not
growing with the number of examples).
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

from realfake.formats.cutouts import write_cutouts_file

STAMPS_PER_FILE = 500
CHANNELS = ["g", "r", "z", "ivar_g", "ivar_r", "ivar_z"]


def write_inputs(root: Path, examples: int) -> int:
    """Half real, half fake cutouts files; returns the bytes of stamps written."""
    rng = np.random.default_rng(0)
    total = 0
    per_kind = examples // 2
    for kind in ("real", "sim"):
        for number in range(int(np.ceil(per_kind / STAMPS_PER_FILE))):
            count = min(STAMPS_PER_FILE, per_kind - number * STAMPS_PER_FILE)
            stamps = rng.normal(0, 0.01, (count, 64, 64, 6)).astype(np.float32)
            brick = f"{1000 + number:04d}p245"
            catalog = pd.DataFrame(
                {"id": np.arange(count), "brickname": [brick] * count, "mag_dered_g": rng.normal(23, 0.5, count)}
            )
            attributes = {"kind": kind, "bands": ["g", "r", "z"], "channels": CHANNELS, "stamp_size": 64}
            write_cutouts_file(root / kind / brick[:3] / f"{brick}.h5", stamps, catalog, attributes)
            total += stamps.nbytes
    return total


def copy_once(inputs: list[Path], copy_dir: Path) -> float:
    """Seconds to copy the inputs and flush them to disk (the best case for the baseline: page cache warm)."""
    copy_dir.mkdir()
    start = time.perf_counter()
    for number, path in enumerate(inputs):
        shutil.copyfile(path, copy_dir / f"{number}.h5")
    os.sync()
    seconds = time.perf_counter() - start
    shutil.rmtree(copy_dir)
    os.sync()
    return seconds


CHILD = """
import os, sys, time
from pathlib import Path
from realfake.shards.build import run_shards
from realfake.shards.settings import ShardSettings
root = Path(sys.argv[1])
start = time.perf_counter()
run_shards(ShardSettings(real_dir=root / "real", sim_dir=root / "sim", out=root / "shards", balance="none", match=()),
            progress=open("/dev/null", "w"))
os.sync()
elapsed = time.perf_counter() - start
peak = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0].split()[1]
print(elapsed, int(peak) / 1024)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, nargs="+", default=[3000, 12000])
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for examples in args.examples:
        with tempfile.TemporaryDirectory(dir=args.workdir) as workdir:
            root = Path(workdir)
            stamp_bytes = write_inputs(root, examples)
            inputs = sorted(root.rglob("*.h5"))
            input_bytes = sum(path.stat().st_size for path in inputs)
            os.sync()
            copy_seconds = min(copy_once(inputs, root / f"copy{attempt}") for attempt in range(2))
            result = subprocess.run(
                [sys.executable, "-c", CHILD, str(root)], capture_output=True, text=True, check=True
            )
            shard_seconds, peak_mib = map(float, result.stdout.split())
            manifest = json.loads((root / "shards" / "manifest.json").read_text())
            assert manifest["splits"]["train"]["examples"] + manifest["splits"]["test"]["examples"] == examples
        copy_rate = input_bytes / copy_seconds
        shard_rate = input_bytes / shard_seconds
        rows.append(
            (examples, stamp_bytes / 2**20, copy_rate / 2**20, shard_rate / 2**20, shard_rate / copy_rate, peak_mib)
        )
    print(
        f"{'examples':>9} {'stamps MiB':>10} {'copy MiB/s':>10} {'shards MiB/s':>12} {'ratio':>6} {'peak RSS MiB':>12}"
    )
    for row in rows:
        print(f"{row[0]:>9d} {row[1]:>10.0f} {row[2]:>10.0f} {row[3]:>12.0f} {row[4]:>6.2f} {row[5]:>12.0f}")
    print("target: ratio (shards / plain copy, same bytes, same run) >= 0.5; peak RSS flat in the number of examples")


if __name__ == "__main__":
    main()
