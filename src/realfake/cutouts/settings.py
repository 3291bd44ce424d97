"""What cutouts to make: :class:`CutoutSettings`, and what happened to a brick's sources: :class:`CutoutCounts`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from realfake.conventions import BANDS, KINDS, STAMP_SIZE
from realfake.errors import RealfakeError
from realfake.survey.selection import SELECTION_BANDS, SELECTIONS, missing_selection_bands

DEFAULT_SELECTION = "elg_padded"
# Where the real stamps are cut: the DR5 coadds, or the obiwan rs dir coadds the fakes are in.
REAL_SOURCES = ("dr5", "rsdir")


@dataclass(frozen=True)
class CutoutSettings:
    """What cutouts to make. ``obiwan_dir`` is needed for kind "sim", and for kind "real"
    with ``real_source="rsdir"``; ``dr5_dir`` always (brick table, tractor catalog; for
    fakes with an older simcat, the fallback Milky Way transmission).

    ``real_source``: "dr5" cuts the real sources from the DR5 coadds; "rsdir" from the
    obiwan rs dir coadds, the images the fakes are in (the same-image control:
    ``docs/audit.md``). Then a real source is cut from the first rs dir (in
    :func:`realfake.survey.legacy.find_rsdirs` order) with no fake within
    ``real_exclusion_radius`` pixels of it in x and in y (chessboard distance; the
    default, half a stamp, keeps every fake's centre out of every real stamp), and
    dropped as ``near_fake`` when every rs dir has one.
    """

    kind: str
    dr5_dir: Path
    obiwan_dir: Path | None = None
    bands: tuple[str, ...] = field(default=BANDS)
    selection: str = DEFAULT_SELECTION
    select_fakes: bool = False
    pad_edges: bool = False
    stamp_size: int = STAMP_SIZE
    real_source: str = "dr5"
    real_exclusion_radius: int = STAMP_SIZE // 2

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RealfakeError(f"cutouts kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not self.bands or len(set(self.bands)) != len(self.bands):
            raise RealfakeError(f"bands {''.join(self.bands)!r}: give each of g, r, z at most once, at least one")
        unknown = [band for band in self.bands if band not in BANDS]
        if unknown:
            raise RealfakeError(f"unknown band(s) {', '.join(unknown)}; the survey has g, r, z")
        if self.selection not in SELECTIONS:
            raise RealfakeError(f"unknown selection {self.selection!r}; choose one of {', '.join(sorted(SELECTIONS))}")
        missing = missing_selection_bands(self.selection, self.bands)
        if missing and (self.kind == "real" or self.select_fakes):
            raise RealfakeError(
                f"selection {self.selection} cuts on bands {', '.join(SELECTION_BANDS[self.selection])}, but the bands "
                f"are {', '.join(self.bands)}: add {', '.join(missing)} to the bands or choose another selection"
            )
        if self.real_source not in REAL_SOURCES:
            raise RealfakeError(f"real source {self.real_source!r} is not one of {', '.join(REAL_SOURCES)}")
        if self.real_exclusion_radius < 0:
            raise RealfakeError(f"real exclusion radius must be at least 0 pixels, got {self.real_exclusion_radius}")
        if self.kind == "sim" and self.obiwan_dir is None:
            raise RealfakeError("cutouts of kind sim need the obiwan output tree (--obiwan-dir)")
        if self.cuts_reals_from_rsdirs and self.obiwan_dir is None:
            raise RealfakeError("real cutouts with --real-source rsdir need the obiwan output tree (--obiwan-dir)")
        if self.stamp_size < 2 or self.stamp_size % 2:
            raise RealfakeError(f"stamp size must be even and positive, got {self.stamp_size}")

    @property
    def cuts_reals_from_rsdirs(self) -> bool:
        """Whether these are real cutouts taken from the rs dir coadds (``real_source="rsdir"``)."""
        return self.kind == "real" and self.real_source == "rsdir"

    @property
    def applied_selection(self) -> str:
        """The selection this kind's sources pass: the named one, or "none" for fakes without select_fakes."""
        return self.selection if self.kind == "real" or self.select_fakes else "none"


@dataclass(frozen=True)
class CutoutCounts:
    """What happened to a brick's sources: read from the catalogs, selected, written, dropped (by reason:
    off the image, without coverage, or, for reals cut from the rs dirs, near a fake in every rs dir)."""

    sources_read: int = 0
    sources_selected: int = 0
    sources_written: int = 0
    dropped_off_image: int = 0
    dropped_no_coverage: int = 0
    dropped_near_fake: int = 0

    def __add__(self, other: CutoutCounts) -> CutoutCounts:
        return CutoutCounts(*(mine + theirs for mine, theirs in zip(asdict(self).values(), asdict(other).values())))

    def summary(self) -> str:
        return (
            f"{self.sources_written} stamps of {self.sources_selected} selected ({self.sources_read} read; "
            f"dropped {self.dropped_off_image} off_image, {self.dropped_no_coverage} no_coverage, "
            f"{self.dropped_near_fake} near_fake)"
        )
