"""The mock survey: a small survey in the real DR5 and obiwan layouts, rendered with GalSim.

It lets the whole workflow run on a fresh machine with no data, and it is the
controlled experiment that proves the classifier finds real differences: with
``mismatch="none"`` the fakes are drawn from the same population as the real
sources that pass the selection, so a good classifier must not beat chance;
every other mismatch makes the fakes wrong in one named way, by a graded
``strength`` (:data:`MISMATCHES`): at its identity value
(:data:`IDENTITY_STRENGTH`) the fakes are exactly those of ``none``, so a
grid of strengths measures what the test can detect.

Layout written under ``out`` (``AAA`` = first three characters of the brick):

- ``bricks.txt``: the brick names, one per line;
- ``dr5/survey-bricks.fits``: the brick table;
- ``dr5/coadd/AAA/<brick>/legacysurvey-<brick>-{image,invvar}-<band>.fits.fz``;
- ``dr5/tractor/AAA/tractor-<brick>.fits``: measured catalog, DR5 columns;
- ``obiwan/coadd/AAA/<brick>/<rsdir>/legacysurvey-<brick>-{image,invvar}-<band>.fits.fz``:
  the same scene plus that rs dir's fakes;
- ``obiwan/obiwan/AAA/<brick>/<rsdir>/simcat-elg-<brick>.fits``: current schema;
- ``obiwan/tractor/AAA/<brick>/<rsdir>/tractor-<brick>.fits``: legacypipe's
  re-fit of the rs dir images: the DR5 sources and the fakes, measured (the
  fakes' measured values are those they were selected on, see
  :func:`realfake.mock.brick.draw_fakes`);
- ``truth/AAA/truth-<brick>.fits``: the true scene (mock only).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from realfake.errors import RealfakeError
from realfake.progress import say

MISMATCHES = {
    "none": "fakes drawn from the same population as the selected real sources (negative control)",
    "size": "fake half-light radii times the strength (standard 2; 1 = none)",
    "psf": "fakes convolved with the survey PSF scaled in FWHM by the strength (standard 0: unconvolved; 1 = none)",
    "profile": "Sersic index moved the strength's fraction of the way to the wrong profile, exponential <-> "
    "de Vaucouleurs (standard 1: swapped; 0 = none)",
    "noise": "the strength's fraction of the variance of the fakes' own photon noise left out (obiwan add_sim_noise; "
    "standard 1: all; 0 = none)",
    "background": "the rs dirs' sky offset from the DR5 coadds' by the strength times the per-pixel sky noise "
    "(another processing run's sky subtraction; standard 0.1; 0 = none)",
    "ivar": "the rs dirs' inverse variance includes the strength's fraction of each fake's own photon variance "
    "(obiwan's get_srcimg_invvar; standard 1; 0 = none)",
    "undetected": "the fakes include the strength's fraction of those the measurement would not detect, with no "
    "re-fit in their rs dir (reals are all detections; standard 1; 0 = none)",
    "edges": "fakes are never placed within the strength times half a stamp of a chip gap, an uncovered region or "
    "the image edge (obiwan's whole-stamp-on-the-CCD rule; standard 1; 0 = none)",
}
# The strength a mismatch has when none is given: the mismatches as the controls were first run.
STANDARD_STRENGTH = {
    "size": 2.0, "psf": 0.0, "profile": 1.0, "noise": 1.0, "background": 0.1, "ivar": 1.0, "undetected": 1.0,
    "edges": 1.0,
}  # fmt: skip
# The strength at which a mismatch changes nothing: its fakes are those of "none".
IDENTITY_STRENGTH = {
    "size": 1.0, "psf": 1.0, "profile": 0.0, "noise": 0.0, "background": 0.0, "ivar": 0.0, "undetected": 0.0,
    "edges": 0.0,
}  # fmt: skip
# Mismatches of the processing, not of the galaxies: what the shortcut audit and the same-image control are for.
PROCESSING_MISMATCHES = ("background", "ivar", "undetected", "edges")
# The strengths a mismatch accepts, (lowest, highest); None: no upper bound. psf stops at 4: its FWHM (at most
# 4 x 1.5" = 6", 23 pixels) stays under half a stamp; a fake blurred past that is no test of a PSF difference.
STRENGTH_RANGE = {
    "size": (0.1, None), "psf": (0.0, 4.0), "profile": (0.0, 1.0), "noise": (0.0, 1.0), "background": (0.0, None),
    "ivar": (0.0, 1.0), "undetected": (0.0, 1.0), "edges": (0.0, 2.0),
}  # fmt: skip
BRICK_SIZE_DEG = 0.25
FIRST_BRICK = (123.887195, 24.5)  # DR5 brick 1238p245, the brick of ../shared/realdata
BRICKS_PER_ROW = 8


@dataclass(frozen=True)
class MockSettings:
    """What mock survey to write. Brick k's content depends only on (seed, brick), not on ``bricks``."""

    out: Path
    bricks: int = 12
    size: int = 836  # pixels per side (DR5 bricks are 3600)
    seed: int = 1
    mismatch: str = "none"
    strength: float | None = None
    rsdirs: int = 2
    fakes_per_rsdir: int = 50
    bands: tuple[str, ...] = field(default=("g", "r", "z"))

    def __post_init__(self) -> None:
        if self.mismatch not in MISMATCHES:
            raise RealfakeError(f"unknown mismatch {self.mismatch!r}; choose one of {', '.join(MISMATCHES)}")
        if self.strength is not None:
            if self.mismatch == "none":
                named = [name for name in MISMATCHES if name != "none"]
                raise RealfakeError(
                    f"a mismatch strength needs a named mismatch ({', '.join(named[:-1])} or {named[-1]}), not none"
                )
            if not math.isfinite(self.strength):
                raise RealfakeError(f"mismatch {self.mismatch} strength must be a finite number, got {self.strength}")
            low, high = STRENGTH_RANGE[self.mismatch]
            if not (self.strength >= low and (high is None or self.strength <= high)):
                bounds = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
                raise RealfakeError(f"mismatch {self.mismatch} strength must be {bounds}, got {self.strength}")
        for name in ("bricks", "rsdirs", "fakes_per_rsdir"):
            if getattr(self, name) < 1:
                raise RealfakeError(f"mock setting {name} must be at least 1, got {getattr(self, name)}")
        if not 128 <= self.size <= 4096:
            raise RealfakeError(f"mock setting size must be between 128 and 4096 pixels, got {self.size}")
        unknown = set(self.bands) - {"g", "r", "z"}
        if unknown:
            raise RealfakeError(f"the mock survey renders g, r, z only; unknown bands {sorted(unknown)}")


def effective_strength(settings: MockSettings) -> float | None:
    """The strength the fakes get: the one given, or the mismatch's standard one; None for ``none``."""
    if settings.mismatch == "none":
        return None
    return STANDARD_STRENGTH[settings.mismatch] if settings.strength is None else float(settings.strength)


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


def mock_rsdir_names(rsdirs: int, fakes_per_rsdir: int) -> list[str]:
    """obiwan rs dir names: ``rs<N>`` with N the first fake id of the chunk."""
    return [f"rs{index * fakes_per_rsdir}" for index in range(rsdirs)]


def run_mock_survey(
    settings: MockSettings, only_bricks: list[str] | None = None, table_only: bool = False
) -> list[str]:
    """Write the mock survey under ``settings.out``; return the names of the bricks written.

    ``only_bricks`` restricts the work to those bricks' files (the brick table
    is not rewritten); ``table_only`` writes just the brick table and
    ``bricks.txt``. With neither, everything is written.
    """
    from realfake.mock.brick import write_brick, write_brick_table

    bricks = mock_bricks(settings.bricks)
    if only_bricks:
        by_name = {brick.name: brick for brick in bricks}
        unknown = [name for name in only_bricks if name not in by_name]
        if unknown:
            raise RealfakeError(
                f"brick {unknown[0]} is not one of the {settings.bricks} mock bricks ({', '.join(by_name)})"
            )
        bricks = [by_name[name] for name in only_bricks]
    else:
        write_brick_table(settings, bricks)
        if table_only:
            return []
    if table_only:
        raise RealfakeError("--table-only and --brick cannot be combined")
    for index, brick in enumerate(bricks, start=1):
        start = time.perf_counter()
        summary = write_brick(settings, brick)
        say(
            "mock-survey", f"brick {brick.name} ({index}/{len(bricks)}): {summary}, {time.perf_counter() - start:.1f} s"
        )
    return [brick.name for brick in bricks]


def seed_sequence(settings: MockSettings, brick: BrickGeometry, stream: str) -> np.random.Generator:
    """An independent random stream per (seed, brick, purpose): a brick never depends on the others."""
    stream_key = int.from_bytes(stream.encode()[:8].ljust(8, b"\0"), "little")
    return np.random.default_rng(np.random.SeedSequence([settings.seed, brick.brickid, stream_key]))
