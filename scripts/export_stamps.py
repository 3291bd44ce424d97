"""Every example of a shard set, as the CNN sees it, in one .npz for scripts/standard_tests.py.

    .venv/bin/python scripts/export_stamps.py results/shards stamps.npz

Writes ``x`` float32 (n, S, S, C), the stamps normalised by the shard set's input transform
(``realfake.evaluation.mmd.normalized_stamps``), ``label`` (fake = 1) and ``brick``: the test split's examples,
or with cross-fitting every example (the pooled view). Reads the whole split into memory (n x S x S x C x 4
bytes: 100 MB for the demo's 1,600 examples); a benchmark's shard sets are small.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from realfake.evaluation.mmd import normalized_stamps
from realfake.formats.shardset import open_shard_set


def export(shards: Path, out: Path) -> int:
    """Write ``out``; return the number of examples."""
    shard_set = open_shard_set(shards).pooled_view()
    count = shard_set.examples("test")
    stamps = shard_set.read_examples("test", np.arange(count))
    x = normalized_stamps(stamps, shard_set.channel_names, shard_set.manifest.normalization).astype(np.float32)
    catalog = shard_set.catalog("test")
    np.savez(out, x=x, label=catalog["label"].to_numpy(), brick=catalog["brickname"].to_numpy().astype(str))
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards", type=Path, help="shard set directory")
    parser.add_argument("out", type=Path, help="output .npz")
    args = parser.parse_args()
    print(f"{export(args.shards, args.out)} examples -> {args.out}")


if __name__ == "__main__":
    main()
