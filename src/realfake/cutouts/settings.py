"""What cutouts to make: :class:`CutoutSettings`, and what happened to a brick's sources: :class:`CutoutCounts`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from realfake.conventions import BANDS, KINDS, STAMP_SIZE
from realfake.errors import RealfakeError
from realfake.selection import SELECTION_BANDS, SELECTIONS, missing_selection_bands

DEFAULT_SELECTION = "elg_padded"


@dataclass(frozen=True)
class CutoutSettings:
    """What cutouts to make. ``obiwan_dir`` is needed for kind "sim" only; ``dr5_dir``
    always (brick table; for fakes with an older simcat, the fallback Milky Way transmission)."""

    kind: str
    dr5_dir: Path
    obiwan_dir: Path | None = None
    bands: tuple[str, ...] = field(default=BANDS)
    selection: str = DEFAULT_SELECTION
    select_fakes: bool = False
    pad_edges: bool = False
    stamp_size: int = STAMP_SIZE

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
        if self.kind == "sim" and self.obiwan_dir is None:
            raise RealfakeError("cutouts of kind sim need the obiwan output tree (--obiwan-dir)")
        if self.stamp_size < 2 or self.stamp_size % 2:
            raise RealfakeError(f"stamp size must be even and positive, got {self.stamp_size}")

    @property
    def applied_selection(self) -> str:
        """The selection this kind's sources pass: the named one, or "none" for fakes without select_fakes."""
        return self.selection if self.kind == "real" or self.select_fakes else "none"


@dataclass(frozen=True)
class CutoutCounts:
    """What happened to a brick's sources: read from the catalogs, selected, written, dropped (by reason)."""

    sources_read: int = 0
    sources_selected: int = 0
    sources_written: int = 0
    dropped_off_image: int = 0
    dropped_no_coverage: int = 0

    def __add__(self, other: CutoutCounts) -> CutoutCounts:
        return CutoutCounts(*(mine + theirs for mine, theirs in zip(asdict(self).values(), asdict(other).values())))

    def summary(self) -> str:
        return (
            f"{self.sources_written} stamps of {self.sources_selected} selected ({self.sources_read} read; "
            f"dropped {self.dropped_off_image} off_image, {self.dropped_no_coverage} no_coverage)"
        )
