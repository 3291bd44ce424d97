"""The shard set's catalogs, sorted into shard order by an external sort of bounded memory (:class:`CatalogBuckets`).

The shards stage moves stamps one input file at a time (:mod:`realfake.shards.scatter`),
so each file's catalog rows arrive at random positions of their split; this
sorts them by position without holding a split's catalog in memory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# Catalog rows per sorting bucket: bounds the memory of the last pass over the catalogs.
BUCKET_ROWS = 200_000
# Catalog rows held per split before they are written out in buckets (~50 MB each for the cutouts catalog);
# at 60 million examples the train split's catalog is then ~1000 files.
FLUSH_ROWS = 50_000


class CatalogBuckets:
    """An external sort of the catalog rows by destination position, in two passes of bounded memory.

    Rows arrive one input file at a time, at random positions of the split. They are held until
    ``FLUSH_ROWS`` have come, then written as one parquet file with one row group per bucket of
    ``BUCKET_ROWS`` positions; at the end each bucket's row groups are read from every file, sorted and
    appended to the catalog. The number of files grows as N / FLUSH_ROWS and each holds at most
    N / BUCKET_ROWS row groups, so the cost per row stays flat (a file per input file and bucket, as
    before, made N / 600 x N / BUCKET_ROWS files: quadratic in N).
    """

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir()
        self.pending: list[pd.DataFrame] = []
        self.pending_rows = 0
        self.files: list[tuple[Path, dict[int, int]]] = []  # (file, bucket -> its row group)

    def add(self, rows: pd.DataFrame, positions: np.ndarray) -> None:
        self.pending.append(rows.assign(_position=positions))
        self.pending_rows += len(rows)
        if self.pending_rows >= FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        table = pd.concat(self.pending, ignore_index=True)
        self.pending, self.pending_rows = [], 0
        bucket_of = table["_position"].to_numpy() // BUCKET_ROWS
        by_bucket = np.argsort(bucket_of, kind="stable")
        arrow = pa.Table.from_pandas(table.iloc[by_bucket].reset_index(drop=True), preserve_index=False)
        buckets, starts = np.unique(bucket_of[by_bucket], return_index=True)
        ends = [*starts[1:], len(table)]
        path = self.directory / f"{len(self.files)}.parquet"
        groups = {}
        with pq.ParquetWriter(path, arrow.schema) as writer:
            for group, (bucket, first, end) in enumerate(zip(buckets, starts, ends, strict=True)):
                writer.write_table(arrow.slice(first, end - first), row_group_size=end - first)
                groups[int(bucket)] = group
        self.files.append((path, groups))

    def write_sorted(self, path: Path) -> None:
        self._flush()
        files = [(pq.ParquetFile(file), groups) for file, groups in self.files]
        writer = None
        for bucket in sorted({bucket for _, groups in files for bucket in groups}):
            parts = [file.read_row_group(groups[bucket]).to_pandas() for file, groups in files if bucket in groups]
            table = pd.concat(parts, ignore_index=True).sort_values("_position").drop(columns="_position")
            arrow = pa.Table.from_pandas(table.reset_index(drop=True), preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, arrow.schema)
            writer.write_table(arrow)
        if writer is None:
            pd.DataFrame({"shard": np.zeros(0, np.int32), "row": np.zeros(0, np.int32)}).to_parquet(path, index=False)
        else:
            writer.close()
        for file, _ in files:
            file.close()
        shutil.rmtree(self.directory)
