"""Many bricks: a brick list made one brick at a time, split across MPI ranks."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from realfake.cutouts.brick import expected_attributes, read_survey_bricks, run_cutouts
from realfake.cutouts.settings import CutoutCounts, CutoutSettings
from realfake.errors import RealfakeError
from realfake.formats.cutouts import catalog_columns, cutouts_file_is_complete
from realfake.paths import cutouts_path, read_brick_list, read_tile_list
from realfake.progress import say


def _mpi_rank_and_size() -> tuple[int, int]:
    """This process's rank and the number of ranks (0, 1 without MPI or mpi4py).

    mpi4py is imported here, not at module level: importing it initialises MPI.
    """
    try:
        from mpi4py import MPI
    except ImportError:
        return 0, 1
    return MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()


def run_cutouts_batch(
    settings: CutoutSettings, bricks_file: Path, out_dir: Path, progress: TextIO | None = None
) -> CutoutCounts:
    """Make the cutouts of every brick in ``bricks_file`` as ``<out_dir>/<AAA>/<brick>.h5`` (with a manifest:
    of every tile, by name or file name, as ``<out_dir>/<first three characters>/<file name>.h5``).

    Under ``mpiexec -n N`` (or ``srun -n N``) rank r takes bricks r, r + N, ...
    A brick whose file exists and is complete (:func:`cutouts_file_is_complete`)
    is skipped, so a killed batch can be restarted. A brick with bad input is
    reported and the rest still run; then RealfakeError lists the failures.
    One line per brick goes to ``progress``. Returns this rank's counts.
    """
    progress = progress or sys.stderr
    if settings.manifest is None:
        bricks = read_brick_list(bricks_file)
        survey_bricks = read_survey_bricks(settings.dr5_dir)
    else:
        bricks, survey_bricks = read_tile_list(bricks_file), None
    rank, size = _mpi_rank_and_size()
    mine = bricks[rank::size]
    stage = f"cutouts {settings.kind} [rank {rank}/{size}]"
    total, failures = CutoutCounts(), []
    for index, brick_name in enumerate(mine, start=1):
        out = cutouts_path(out_dir, brick_name)
        position = f"brick {brick_name} ({index}/{len(mine)})"
        if cutouts_file_is_complete(out, expected_attributes(settings, brick_name), catalog_columns(settings.bands)):
            say(stage, f"{position}: {out} exists and is complete, skipped", progress)
            continue
        start = time.perf_counter()
        try:
            counts = run_cutouts(settings, brick_name, out, survey_bricks)
        except RealfakeError as error:
            failures.append(f"{brick_name}: {error}")
            say(stage, f"{position}: error: {error}", progress)
            continue
        total = total + counts
        elapsed = time.perf_counter() - start
        say(stage, f"{position}: {counts.summary()}, {elapsed:.1f} s", progress)
    if failures:
        raise RealfakeError(f"{len(failures)} of {len(mine)} bricks failed on rank {rank}; first: {failures[0]}")
    return total
