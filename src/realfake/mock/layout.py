"""Where the mock bricks lie on the sky, what they and their rs dirs are called, and their seeds."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from realfake.mock.settings import MockSettings

BRICK_SIZE_DEG = 0.25


FIRST_BRICK = (123.887195, 24.5)  # DR5 brick 1238p245, the brick of ../shared/realdata


BRICKS_PER_ROW = 8


@dataclass(frozen=True)
class BrickGeometry:
    """A DR5-like brick: name, id, centre and edges in degrees, grid row and column."""

    name: str
    brickid: int
    ra: float
    dec: float
    ra1: float
    ra2: float
    dec1: float
    dec2: float
    row: int
    column: int


def brick_name(ra: float, dec: float) -> str:
    """DR5 brick name RRRR[pm]DDD: RA and |Dec| in tenths of a degree, truncated."""
    sign = "p" if dec >= 0 else "m"
    return f"{int(ra * 10):04d}{sign}{int(abs(dec) * 10):03d}"


def _brick_at(row: int, column: int) -> BrickGeometry:
    """Brick (row, column) of a DR5-like grid: 0.25 deg rows, RA columns about 0.25 deg wide.

    Column widths use the row edge nearer the equator, which reproduces DR5's
    1238p245 exactly (other rows of DR5 may differ by a column).
    """
    dec = -90 + row * BRICK_SIZE_DEG
    edge_nearer_equator = max(abs(dec) - BRICK_SIZE_DEG / 2, 0.0)
    columns = max(1, math.ceil(360 * math.cos(math.radians(edge_nearer_equator)) / BRICK_SIZE_DEG))
    width = 360 / columns
    ra = (column + 0.5) * width
    return BrickGeometry(
        name=brick_name(ra, dec),
        brickid=row * 2000 + column + 1,
        ra=ra,
        dec=dec,
        ra1=ra - width / 2,
        ra2=ra + width / 2,
        dec1=dec - BRICK_SIZE_DEG / 2,
        dec2=dec + BRICK_SIZE_DEG / 2,
        row=row,
        column=column,
    )


def mock_bricks(count: int) -> list[BrickGeometry]:
    """The first ``count`` mock bricks: rows of eight from DR5 brick 1238p245 upward in Dec."""
    first_row = round((FIRST_BRICK[1] + 90) / BRICK_SIZE_DEG)
    bricks = []
    for index in range(count):
        row = first_row + index // BRICKS_PER_ROW
        probe = _brick_at(row, 0)
        first_column = int(FIRST_BRICK[0] / (probe.ra2 - probe.ra1))
        bricks.append(_brick_at(row, first_column + index % BRICKS_PER_ROW))
    return bricks


def mock_brick_names(count: int) -> list[str]:
    """Names of the first ``count`` mock bricks (a pure function: the workflow plans with it)."""
    return [brick.name for brick in mock_bricks(count)]


def mock_rsdir_names(rsdirs: int, fakes_per_rsdir: int, injector: str = "obiwan") -> list[str]:
    """The names of the chunks of fakes, N the first fake id of each: obiwan's rs dirs ``rs<N>``, or legacysim's
    runs ``file0_rs<N>_skip0`` (``injector="legacysim"``)."""
    template = "file0_rs{}_skip0" if injector == "legacysim" else "rs{}"
    return [template.format(index * fakes_per_rsdir) for index in range(rsdirs)]


# The mock's plain legacypipe run of legacysim (MockSettings.plain_run): legacysim names a run
# file<fileid>_rs<rowstart>_skip<skipid>, and a plain run (no --injected-fn) takes the defaults, file0_rs0_skip0,
# unless given a file id; in a tree whose runs of fakes use file id 0 (the mock's file0_rs<N>_skip0) it needs
# another one, here the next, 1.
MOCK_PLAIN_RUN = "file1_rs0_skip0"


def mock_injector_directory(injector: str) -> str:
    """The directory of the mock's fakes' tree below its output directory: ``obiwan`` or ``legacysim``."""
    return injector


def seed_sequence(settings: MockSettings, brick: BrickGeometry, stream: str) -> np.random.Generator:
    """An independent random stream per (seed, brick, purpose): a brick never depends on the others."""
    stream_key = int.from_bytes(stream.encode()[:8].ljust(8, b"\0"), "little")
    return np.random.default_rng(np.random.SeedSequence([settings.seed, brick.brickid, stream_key]))
