"""Cutouts: 64 x 64 stamps of real (tractor) and fake (obiwan simcat) sources, one HDF5 file per brick and kind.

Both kinds go through one code path, so nothing but the pixels can tell a
real stamp from a fake one (``DATA.md`` section 5 lists what went wrong when
they did not):

- Position: ``x, y`` come from the catalog's ``ra, dec`` through the WCS of
  the coadd the stamp is cut from (:func:`realfake.survey.wcs_pixel`, origin 0:
  0-indexed pixels, pixel centres at integers). Tractor ``bx, by`` and simcat
  ``x, y`` are never used.
- Stamp: centred on the nearest pixel, ``centre = floor(coordinate + 0.5)``;
  stamp pixel ``[i, j]`` is image pixel ``[centre_y - S/2 + i, centre_x - S/2 + j]``
  (rows = y, columns = x), so the source sits at stamp pixel
  ``(S/2 + offset_y, S/2 + offset_x)`` with offsets in [-0.5, 0.5).
- Magnitude: ``nanomaggies_to_mag(flux / mw_transmission)`` (dereddened AB) for
  both; the stored flux is the observed one (the simcat's includes extinction,
  like the tractor's).
- Drops: a stamp that leaves the image is dropped as ``off_image`` (with
  ``pad_edges`` it is kept, padded with image 0 and inverse variance 0, as long
  as its centre pixel is on the image); a source whose centre pixel has
  inverse variance 0 in any band is dropped as ``no_coverage``.

Real sources are the tractor catalog of the DR5 brick passing a named
selection (:mod:`realfake.selection`, default ``elg_padded``). Fakes are every
simcat row of every rs dir of the brick (:func:`realfake.survey.find_rsdirs`),
each cut from the coadd of the rs dir it was injected in. Fakes are *not* cut
by the selection unless ``select_fakes``: a simcat holds the *true* parameters
obiwan drew (already in the parameter space of interest), while the selection
box is meant for *measured* tractor values; cutting true values with it would
shape the two classes' distributions differently.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from realfake import __version__, survey
from realfake.cutouts_file import cutouts_file_is_complete, write_cutouts_file
from realfake.errors import RealfakeError
from realfake.selection import SELECTION_BANDS, SELECTIONS, missing_selection_bands, select, tractor_half_light_radius

KINDS = ("real", "sim")
STAMP_SIZE = 64
DEFAULT_SELECTION = "elg_padded"
KEPT, OFF_IMAGE, NO_COVERAGE = 0, 1, 2
PIXEL_CONVENTION = (
    "0-indexed pixels with centres at integer coordinates; x = column, y = row of the coadd, "
    "computed from ra, dec through the coadd WCS (origin 0) for real and fake sources alike; "
    "centre = floor(coordinate + 0.5); stamps[n, i, j, c] = coadd[c][centre_y - S/2 + i, centre_x - S/2 + j], "
    "so the source sits at stamp pixel (S/2 + offset_y, S/2 + offset_x), offsets in [-0.5, 0.5)"
)
# Real types whose profile is an exponential (REX is DR5's round exponential, SIMP its predecessor).
EXPONENTIAL_TYPES = ("REX", "EXP", "SIMP")

# A fake's re-fit in its rs dir's tractor catalog is the source nearest to it within this many pixels.
FIT_MATCH_RADIUS = 1.0

CATALOG_DESCRIPTION = {
    "id": "tractor objid (real) or simcat id (fake)",
    "brickname": "DR5 brick name",
    "rsdir": "obiwan rs dir the fake was injected in; empty for real sources",
    "ra": "right ascension, deg",
    "dec": "declination, deg",
    "x": "0-indexed column of the source in the coadd, from ra, dec through its WCS",
    "y": "0-indexed row of the source in the coadd, from ra, dec through its WCS",
    "centre_x": "coadd column of stamp pixel S/2: floor(x + 0.5)",
    "centre_y": "coadd row of stamp pixel S/2: floor(y + 0.5)",
    "offset_x": "x - centre_x, pixels, in [-0.5, 0.5)",
    "offset_y": "y - centre_y, pixels, in [-0.5, 0.5)",
    "flux_{band}": "observed flux (Milky Way extinction included), nanomaggies",
    "mw_transmission_{band}": "Milky Way transmission (0-1)",
    "mag_dered_{band}": "dereddened AB magnitude, 22.5 - 2.5 log10(flux / mw_transmission); NaN if flux <= 0",
    "type": (
        "real: tractor type (PSF, REX, EXP, DEV, COMP); fake: from its true profile "
        "(PSF if rhalf = 0, EXP if n = 1, DEV if n = 4, else SER)"
    ),
    "size": (
        "half-light radius, arcsec; real: as the selection defines it "
        "(PSF: mean psfsize / 2, REX/EXP: shapeexp_r, DEV: shapedev_r, COMP: fracdev-weighted); fake: simcat rhalf"
    ),
    "sersic_n": "Sersic index: real EXP/REX 1, DEV 4, PSF and COMP NaN; fake: simcat n",
    "e1": "ellipticity component 1: real shapeexp_e1 or shapedev_e1 (PSF 0, COMP NaN); fake: simcat e1",
    "e2": "ellipticity component 2, as e1",
    "measured": (
        "whether the measured_* columns hold a tractor fit: always for a real source; for a fake, when its rs "
        f"dir's tractor catalog has a source within {FIT_MATCH_RADIUS} pixel of it"
    ),
    "measured_mag_dered_{band}": (
        "dereddened AB magnitude of the tractor fit (real: mag_dered_<b>; fake: of its matched rs dir tractor "
        "source); NaN if not measured"
    ),
    "measured_type": "tractor type of the fit (real: type; fake: its matched source's); empty if not measured",
    "measured_size": "half-light radius of the fit, arcsec, defined as size is for reals; NaN if not measured",
}


def catalog_columns(bands: Sequence[str]) -> list[str]:
    """The catalog columns of a cutouts file, in order, for ``bands``."""
    columns = []
    for name in CATALOG_DESCRIPTION:
        if "{band}" in name:
            columns += [name.format(band=band) for band in bands]
        else:
            columns.append(name)
    return columns


def channel_names(bands: Sequence[str]) -> list[str]:
    """Stamp channels: the bands, then their inverse variances: ["g", "r", "z", "ivar_g", "ivar_r", "ivar_z"]."""
    return [*bands, *(f"ivar_{band}" for band in bands)]


def cutouts_path(out_dir: Path, brick_name: str) -> Path:
    """``<out_dir>/<AAA>/<brick>.h5``, the batch mode's (and the workflow's) file of a brick."""
    return Path(out_dir) / survey.brick_subdir(brick_name) / f"{brick_name}.h5"


def dr5_coadd_dir(dr5_dir: Path, brick_name: str) -> Path:
    """``<dr5_dir>/coadd/<AAA>/<brick>``: the brick's DR5 coadd files."""
    return Path(_dr5_coadd_location(str(dr5_dir), brick_name))


def dr5_tractor_path(dr5_dir: Path, brick_name: str) -> Path:
    """``<dr5_dir>/tractor/<AAA>/tractor-<brick>.fits``: the brick's DR5 tractor catalog."""
    return Path(_dr5_tractor_location(str(dr5_dir), brick_name))


def _dr5_coadd_location(dr5_dir: str, brick_name: str) -> str:
    return os.path.join(dr5_dir, "coadd", survey.brick_subdir(brick_name), brick_name)


def _dr5_tractor_location(dr5_dir: str, brick_name: str) -> str:
    return os.path.join(dr5_dir, "tractor", survey.brick_subdir(brick_name), f"tractor-{brick_name}.fits")


@dataclass(frozen=True)
class CutoutSettings:
    """What cutouts to make. ``obiwan_dir`` is needed for kind "sim" only; ``dr5_dir``
    always (brick table; for fakes with an older simcat, the fallback Milky Way transmission)."""

    kind: str
    dr5_dir: Path
    obiwan_dir: Path | None = None
    bands: tuple[str, ...] = field(default=survey.DEFAULT_BANDS)
    selection: str = DEFAULT_SELECTION
    select_fakes: bool = False
    pad_edges: bool = False
    stamp_size: int = STAMP_SIZE

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RealfakeError(f"cutouts kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not self.bands or len(set(self.bands)) != len(self.bands):
            raise RealfakeError(f"bands {''.join(self.bands)!r}: give each of g, r, z at most once, at least one")
        unknown = [band for band in self.bands if band not in survey.SIMCAT_BANDS]
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


# --------------------------------------------------------------------------- stamps: the one code path


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class StampCut:
    """Stamps of N sources in one coadd.

    x, y: float64 (N,), 0-indexed pixel of each source from ra, dec (NaN if the
    WCS gives none); centre_x, centre_y: int64 (N,), the stamp centre pixel
    (meaningless where status is OFF_IMAGE and x or y is NaN); status: int8 (N,),
    KEPT, OFF_IMAGE or NO_COVERAGE; stamps: float32 (K, S, S, 2B) for the K kept
    sources in source order, channels = bands then inverse variances.
    """

    x: np.ndarray
    y: np.ndarray
    centre_x: np.ndarray
    centre_y: np.ndarray
    status: np.ndarray
    stamps: np.ndarray


def cut_stamps(
    coadd: survey.Coadd, ra: np.ndarray, dec: np.ndarray, stamp_size: int = STAMP_SIZE, pad_edges: bool = False
) -> StampCut:
    """Cut an S x S stamp around each (ra, dec) from ``coadd``; see the module docstring for the conventions.

    Works on the coadd arrays already in memory: one gather of S x S windows
    per channel for all stamps at once.
    """
    x, y = survey.wcs_pixel(coadd.wcs, ra, dec, origin=0)
    count = len(x)
    bands, height, width = coadd.image.shape
    half = stamp_size // 2
    finite = np.isfinite(x) & np.isfinite(y)
    centre_x = np.zeros(count, dtype=np.int64)
    centre_y = np.zeros(count, dtype=np.int64)
    centre_x[finite] = np.floor(x[finite] + 0.5)
    centre_y[finite] = np.floor(y[finite] + 0.5)

    centre_on_image = finite & (centre_x >= 0) & (centre_x < width) & (centre_y >= 0) & (centre_y < height)
    # Rows centre_y - half .. centre_y + half - 1 (likewise columns) must all exist.
    stamp_on_image = (
        centre_on_image
        & (centre_x - half >= 0)
        & (centre_x + half <= width)
        & (centre_y - half >= 0)
        & (centre_y + half <= height)
    )
    usable = centre_on_image if pad_edges else stamp_on_image
    status = np.full(count, OFF_IMAGE, dtype=np.int8)
    centre_inverse_variance = coadd.inverse_variance[:, centre_y[usable], centre_x[usable]]  # (B, n usable)
    status[usable] = np.where(np.all(centre_inverse_variance > 0, axis=0), KEPT, NO_COVERAGE)

    kept = status == KEPT
    top, left = centre_y[kept] - half, centre_x[kept] - half
    whole = (top >= 0) & (left >= 0) & (top + stamp_size <= height) & (left + stamp_size <= width)
    stamps = np.zeros((int(kept.sum()), stamp_size, stamp_size, 2 * bands), dtype=np.float32)
    planes = [*coadd.image, *coadd.inverse_variance]
    for channel, plane in enumerate(planes):
        # windows[t, l] is the S x S view of plane starting at row t, column l: no copy until indexed.
        windows = np.lib.stride_tricks.sliding_window_view(plane, (stamp_size, stamp_size))
        stamps[whole, :, :, channel] = windows[top[whole], left[whole]]
    # Stamps over the image edge (pad_edges only): copy the part on the image, leave the rest 0.
    for index in np.flatnonzero(~whole):
        rows = slice(max(top[index], 0), min(top[index] + stamp_size, height))
        columns = slice(max(left[index], 0), min(left[index] + stamp_size, width))
        stamp_rows = slice(rows.start - top[index], rows.stop - top[index])
        stamp_columns = slice(columns.start - left[index], columns.stop - left[index])
        for channel, plane in enumerate(planes):
            stamps[index, stamp_rows, stamp_columns, channel] = plane[rows, columns]
    return StampCut(x, y, centre_x, centre_y, status, stamps)


def _cut_sources(
    coadd: survey.Coadd, sources: pd.DataFrame, settings: CutoutSettings
) -> tuple[pd.DataFrame, np.ndarray, CutoutCounts]:
    """Stamps of ``sources`` (a source table, see :func:`real_source_table`) in ``coadd``.

    Returns the kept rows completed to the cutouts catalog, their stamps, and
    the selected/written/dropped counts.
    """
    cut = cut_stamps(
        coadd, sources["ra"].to_numpy(), sources["dec"].to_numpy(), settings.stamp_size, settings.pad_edges
    )
    kept = cut.status == KEPT
    catalog = sources.assign(
        x=cut.x, y=cut.y, centre_x=cut.centre_x, centre_y=cut.centre_y, offset_x=cut.x - cut.centre_x,
        offset_y=cut.y - cut.centre_y,
    )[kept]  # fmt: skip
    counts = CutoutCounts(
        sources_selected=len(sources),
        sources_written=int(kept.sum()),
        dropped_off_image=int((cut.status == OFF_IMAGE).sum()),
        dropped_no_coverage=int((cut.status == NO_COVERAGE).sum()),
    )
    return catalog, cut.stamps, counts


# --------------------------------------------------------------------------- source tables


def _source_table(
    brick_name: str,
    rsdir: str,
    catalog: pd.DataFrame,
    bands: Sequence[str],
    source_type: np.ndarray,
    size: np.ndarray,
    sersic_n: np.ndarray,
    e1: np.ndarray,
    e2: np.ndarray,
) -> pd.DataFrame:
    """Sources of either kind with the same columns; ``catalog`` has id, ra, dec, flux_<b>, mw_transmission_<b>.

    The one magnitude definition of both kinds is applied here.
    """
    count = len(catalog)
    table = pd.DataFrame(
        {
            "id": catalog["id"].to_numpy(np.int64),
            "brickname": np.full(count, brick_name, dtype=object),
            "rsdir": np.full(count, rsdir, dtype=object),
            "ra": catalog["ra"].to_numpy(np.float64),
            "dec": catalog["dec"].to_numpy(np.float64),
        }
    )
    for band in bands:
        table[f"flux_{band}"] = catalog[f"flux_{band}"].to_numpy(np.float64)
    for band in bands:
        table[f"mw_transmission_{band}"] = catalog[f"mw_transmission_{band}"].to_numpy(np.float64)
    for band in bands:
        table[f"mag_dered_{band}"] = survey.nanomaggies_to_mag(
            table[f"flux_{band}"].to_numpy() / table[f"mw_transmission_{band}"].to_numpy()
        )
    table["type"] = np.asarray(source_type, dtype=object)
    table["size"] = np.asarray(size, dtype=np.float64)
    table["sersic_n"] = np.asarray(sersic_n, dtype=np.float64)
    table["e1"] = np.asarray(e1, dtype=np.float64)
    table["e2"] = np.asarray(e2, dtype=np.float64)
    return table


def real_source_table(tractor: pd.DataFrame, brick_name: str, bands: Sequence[str]) -> pd.DataFrame:
    """Source table of tractor rows (as :func:`realfake.survey.read_tractor` returns them)."""
    source_type = tractor["type"].to_numpy().astype(str)
    is_exponential = np.isin(source_type, EXPONENTIAL_TYPES)
    is_dev = source_type == "DEV"
    is_psf = source_type == "PSF"
    sersic_n = np.where(is_exponential, 1.0, np.where(is_dev, 4.0, np.nan))
    e1, e2 = np.full(len(tractor), np.nan), np.full(len(tractor), np.nan)
    for component, values in (("e1", e1), ("e2", e2)):
        values[is_exponential] = tractor[f"shapeexp_{component}"].to_numpy(np.float64)[is_exponential]
        values[is_dev] = tractor[f"shapedev_{component}"].to_numpy(np.float64)[is_dev]
        values[is_psf] = 0.0
    table = _source_table(
        brick_name,
        "",
        tractor.assign(id=tractor["objid"]),
        bands,
        source_type,
        tractor_half_light_radius(tractor, bands),
        sersic_n,
        e1,
        e2,
    )
    return _with_fit(table, table, np.ones(len(table), dtype=bool), bands)


def fake_type(sersic_n: np.ndarray, rhalf: np.ndarray) -> np.ndarray:
    """Type of a fake from its true profile: PSF (rhalf <= 0), EXP (n = 1), DEV (n = 4), else SER."""
    sersic_n, rhalf = np.asarray(sersic_n, dtype=np.float64), np.asarray(rhalf, dtype=np.float64)
    return np.where(rhalf <= 0, "PSF", np.where(sersic_n == 1, "EXP", np.where(sersic_n == 4, "DEV", "SER")))


def fake_source_table(
    simcat: pd.DataFrame, brick_name: str, rsdir: str, bands: Sequence[str], tractor: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Source table of simcat rows (as :func:`realfake.survey.read_simcat` returns them).

    ``tractor``, the rs dir's tractor catalog (legacypipe re-run on the images
    with the fakes), gives each fake its fit: the tractor source nearest to the
    fake's position within FIT_MATCH_RADIUS pixels, described exactly as a real
    source is (:func:`real_source_table`). Without it no fake is measured.
    """
    table = _source_table(
        brick_name,
        rsdir,
        simcat,
        bands,
        fake_type(simcat["sersic_n"], simcat["rhalf"]),
        simcat["rhalf"].to_numpy(np.float64),
        simcat["sersic_n"].to_numpy(np.float64),
        simcat["e1"].to_numpy(np.float64),
        simcat["e2"].to_numpy(np.float64),
    )
    if tractor is None or len(tractor) == 0 or len(simcat) == 0:
        return _with_fit(table, table, np.zeros(len(table), dtype=bool), bands)
    from scipy.spatial import cKDTree

    distance, nearest = cKDTree(tractor[["bx", "by"]].to_numpy(np.float64)).query(
        simcat[["x", "y"]].to_numpy(np.float64), distance_upper_bound=FIT_MATCH_RADIUS
    )
    matched = np.isfinite(distance)
    fits = real_source_table(tractor.iloc[np.where(matched, nearest, 0)], brick_name, bands)
    return _with_fit(table, fits.set_axis(table.index), matched, bands)


def _with_fit(table: pd.DataFrame, fits: pd.DataFrame, measured: np.ndarray, bands: Sequence[str]) -> pd.DataFrame:
    """``table`` with the measured_* columns taken from the rows of ``fits`` where ``measured``."""
    table = table.copy()
    table["measured"] = measured
    for band in bands:
        table[f"measured_mag_dered_{band}"] = np.where(measured, fits[f"mag_dered_{band}"].to_numpy(np.float64), np.nan)
    table["measured_type"] = np.where(measured, fits["type"].to_numpy(dtype=object), "").astype(object)
    table["measured_size"] = np.where(measured, fits["size"].to_numpy(np.float64), np.nan)
    return table


def fake_selection_view(simcat: pd.DataFrame) -> pd.DataFrame:
    """Simcat rows (as :func:`realfake.survey.read_simcat` returns them) dressed as a tractor catalog,
    so that a named selection can cut fakes.

    True values stand in for the measured ones: fluxes and transmissions of all
    simcat bands; every fake primary, observed once, with positive flux inverse
    variance (coverage is judged from the pixels instead); ``type`` from the
    true profile (:func:`fake_type`); ``shapeexp_r = shapedev_r = rhalf`` and
    ``psfsize = 2 rhalf``, so every type's size is the true half-light radius.
    """
    size = simcat["rhalf"].to_numpy(np.float64)
    source_type = fake_type(simcat["sersic_n"], size)
    view = pd.DataFrame(
        {
            "brick_primary": np.ones(len(simcat), dtype=bool),
            "type": source_type,
            "fracdev": np.where(source_type == "DEV", 1.0, 0.0),
            "shapeexp_r": size,
            "shapedev_r": size,
        }
    )
    for band in survey.SIMCAT_BANDS:
        view[f"flux_{band}"] = simcat[f"flux_{band}"].to_numpy(np.float64)
        view[f"mw_transmission_{band}"] = simcat[f"mw_transmission_{band}"].to_numpy(np.float64)
        view[f"nobs_{band}"] = 1
        view[f"flux_ivar_{band}"] = 1.0
        view[f"psfsize_{band}"] = 2 * size
    return view


def _select(catalog: pd.DataFrame, name: str, path: Path) -> np.ndarray:
    """Boolean mask of the named selection; a column the selection needs but ``path`` lacks is a user error."""
    try:
        return np.asarray(select(catalog, name), dtype=bool)
    except KeyError as error:
        raise RealfakeError(f"selection {name} needs column {error.args[0]!r}, which {path} lacks") from None


# --------------------------------------------------------------------------- one brick


@dataclass(frozen=True, eq=False)
class _Cutouts:
    """A brick's stamps, catalog, counts, the files read, and per-kind attributes."""

    catalog: pd.DataFrame
    stamps: np.ndarray
    counts: CutoutCounts
    inputs: list[str]
    attributes: dict[str, object]


def _real_cutouts(settings: CutoutSettings, brick_name: str) -> _Cutouts:
    tractor_path = dr5_tractor_path(settings.dr5_dir, brick_name)
    tractor = survey.read_tractor(tractor_path, settings.bands)
    selected = _select(tractor, settings.selection, tractor_path)
    sources = real_source_table(tractor[selected], brick_name, settings.bands)
    coadd = survey.read_coadd(dr5_coadd_dir(settings.dr5_dir, brick_name), brick_name, settings.bands)
    catalog, stamps, counts = _cut_sources(coadd, sources, settings)
    counts = CutoutCounts(sources_read=len(tractor)) + counts
    return _Cutouts(catalog, stamps, counts, [str(tractor_path), *map(str, coadd.paths)], {})


def _median_transmission(tractor_path: Path, bands: Sequence[str]) -> dict[str, float] | None:
    """Per-band median ``mw_transmission_<b>`` of a tractor catalog, for every simcat band it has.

    None if the catalog is absent, empty, or lacks a valid transmission in one of ``bands``.
    """
    if not tractor_path.is_file():
        return None
    tractor = survey.read_fits_table(tractor_path)
    medians = {
        band: float(np.median(tractor[f"mw_transmission_{band}"]))
        for band in survey.SIMCAT_BANDS
        if f"mw_transmission_{band}" in tractor.columns and len(tractor) > 0
    }
    usable = all(band in medians and np.isfinite(medians[band]) and medians[band] > 0 for band in bands)
    return medians if usable else None


def _read_fakes(settings: CutoutSettings, brick_name: str, rsdir: survey.RsDir) -> tuple[pd.DataFrame, list[str], str]:
    """The simcat of ``rsdir`` with Milky Way transmissions, the files read, and where the transmissions came from.

    An older-schema simcat has no transmissions: they are the per-band median
    of the rs dir's tractor catalog if it has them, else of the DR5 brick's.
    """
    simcat = survey.read_simcat(rsdir.simcat_path)
    if simcat.attrs["schema"] != "older":
        return simcat, [str(rsdir.simcat_path)], f"{rsdir.name}: simcat"
    dr5_tractor = dr5_tractor_path(settings.dr5_dir, brick_name)
    for tractor_path in (rsdir.tractor_path, dr5_tractor):
        transmission = _median_transmission(tractor_path, settings.bands)
        if transmission is not None:
            simcat = survey.read_simcat(rsdir.simcat_path, transmission)
            return simcat, [str(rsdir.simcat_path), str(tractor_path)], f"{rsdir.name}: median of {tractor_path}"
    columns = ", ".join(f"mw_transmission_{band}" for band in settings.bands)
    raise RealfakeError(
        f"simcat {rsdir.simcat_path} (older schema) has no Milky Way transmission, and neither "
        f"{rsdir.tractor_path} nor {dr5_tractor} exists with rows and columns {columns}"
    )


def _rsdirs(settings: CutoutSettings, brick_name: str) -> list[survey.RsDir]:
    rsdirs = survey.find_rsdirs(settings.obiwan_dir, brick_name)
    if not rsdirs:
        raise _no_rsdirs(settings, brick_name)
    return rsdirs


def _no_rsdirs(settings: CutoutSettings, brick_name: str) -> RealfakeError:
    return RealfakeError(f"brick {brick_name} has no obiwan rs dir with a simcat under {settings.obiwan_dir}")


def _sim_cutouts(settings: CutoutSettings, brick_name: str) -> _Cutouts:
    rsdirs = _rsdirs(settings, brick_name)
    catalogs, stamps, inputs, transmission_sources, fits_from = [], [], [], [], []
    counts = CutoutCounts()
    for rsdir in rsdirs:
        simcat, files_read, transmission_source = _read_fakes(settings, brick_name, rsdir)
        tractor = None
        if rsdir.tractor_path.is_file():
            tractor = survey.read_tractor(rsdir.tractor_path, settings.bands)
            files_read = list(dict.fromkeys([*files_read, str(rsdir.tractor_path)]))
        fits_from.append("" if tractor is None else str(rsdir.tractor_path))
        sources = fake_source_table(simcat, brick_name, rsdir.name, settings.bands, tractor)
        if settings.select_fakes:
            sources = sources[_select(fake_selection_view(simcat), settings.selection, rsdir.simcat_path)]
        coadd = survey.read_coadd(rsdir.coadd_dir, brick_name, settings.bands)
        catalog, rsdir_stamps, rsdir_counts = _cut_sources(coadd, sources, settings)
        inputs += [*files_read, *map(str, coadd.paths)]
        del coadd  # one rs dir's images in memory at a time
        counts = counts + CutoutCounts(sources_read=len(simcat)) + rsdir_counts
        catalogs.append(catalog)
        stamps.append(rsdir_stamps)
        transmission_sources.append(transmission_source)
    attributes = {
        "rsdirs": [rsdir.name for rsdir in rsdirs],
        "mw_transmission_source": transmission_sources,
        "fits_from": fits_from,
    }
    return _Cutouts(pd.concat(catalogs, ignore_index=True), np.concatenate(stamps), counts, inputs, attributes)


def input_files(settings: CutoutSettings, brick_name: str) -> list[str]:
    """The files :func:`make_cutouts` may read for this brick and kind, as they are on disk now.

    Both kinds: the brick table. Real: the DR5 tractor catalog and coadd image
    and inverse variance per band. Sim: per rs dir its simcat and coadds, and
    the tractor catalog an older-schema simcat would take its Milky Way
    transmission from (the rs dir's if it exists, else the DR5 brick's if that
    exists). The workflow plans each brick's job with these, for every brick of
    the survey, so they are built as strings (pathlib would dominate a 100k-brick
    dry run: scripts/bench_dryrun.py).
    """
    dr5_dir = str(settings.dr5_dir)
    files = [str(survey.find_brick_table(dr5_dir))]
    if settings.kind == "real":
        coadd_dirs = [_dr5_coadd_location(dr5_dir, brick_name)]
        files.append(_dr5_tractor_location(dr5_dir, brick_name))
    else:
        rsdirs = survey.rsdir_locations(settings.obiwan_dir, brick_name)
        if not rsdirs:
            raise _no_rsdirs(settings, brick_name)
        coadd_dirs = [coadd_dir for _, _, coadd_dir, _, _ in rsdirs]
        dr5_tractor = _dr5_tractor_location(dr5_dir, brick_name)
        for _, _, _, simcat_path, tractor_path in rsdirs:
            files.append(simcat_path)
            if os.path.isfile(tractor_path):
                files.append(tractor_path)
            elif dr5_tractor not in files and os.path.isfile(dr5_tractor):
                files.append(dr5_tractor)
    names = [survey.coadd_image_name(brick_name, kind, band) for band in settings.bands for kind in survey.COADD_KINDS]
    for coadd_dir in coadd_dirs:
        files += [os.path.join(coadd_dir, name) for name in names]
    return files


def expected_attributes(settings: CutoutSettings, brick_name: str) -> dict[str, object]:
    """The attributes that identify what a cutouts file was made for and from (checked before trusting it):
    the settings, and the trees it was read from (the DR5 tree; for fakes the obiwan tree too), so that
    a file made from another tree is never taken for this one's."""
    expected = {
        "kind": settings.kind,
        "brickname": brick_name,
        "bands": list(settings.bands),
        "channels": channel_names(settings.bands),
        "stamp_size": settings.stamp_size,
        "selection": settings.applied_selection,
        "select_fakes": settings.select_fakes,
        "pad_edges": settings.pad_edges,
        "dr5_dir": str(settings.dr5_dir),
    }
    if settings.kind == "sim":
        expected["obiwan_dir"] = str(settings.obiwan_dir)
    return expected


def read_survey_bricks(dr5_dir: Path) -> tuple[Path, dict[str, survey.Brick]]:
    """The path of the DR5 brick table and its bricks by name."""
    table_path = survey.find_brick_table(dr5_dir)
    return table_path, survey.read_brick_table(table_path)


def make_cutouts(
    settings: CutoutSettings,
    brick_name: str,
    out: Path,
    survey_bricks: tuple[Path, dict[str, survey.Brick]] | None = None,
) -> CutoutCounts:
    """Write the cutouts file of one brick and kind to ``out``; return its counts.

    The file (see :mod:`realfake.cutouts_file`) has ``stamps`` float32
    (N, S, S, 2B), ``catalog/<column>`` (:data:`CATALOG_DESCRIPTION`, N rows),
    and attributes: ``kind``, ``brickname``, ``bands``, ``channels``,
    ``stamp_size``, ``pixel_convention``, ``selection`` (the one these sources
    passed; "none" for fakes without ``select_fakes``), ``select_fakes``,
    ``pad_edges``, ``inputs`` (every file read), ``dr5_dir``, ``obiwan_dir``,
    ``package_version``, the counts (:class:`CutoutCounts`) and for fakes
    ``rsdirs`` and ``mw_transmission_source`` (per rs dir: "simcat" or the
    tractor catalog whose median was used).

    Every input is read and checked before anything is written; a problem
    raises RealfakeError naming the file or brick, and no file appears at ``out``.
    ``survey_bricks`` (from :func:`read_survey_bricks`) saves re-reading the
    brick table for each brick of a batch.
    """
    survey.brick_subdir(brick_name)
    table_path, bricks = survey_bricks or read_survey_bricks(settings.dr5_dir)
    survey.lookup_brick(bricks, brick_name, table_path)
    made = _real_cutouts(settings, brick_name) if settings.kind == "real" else _sim_cutouts(settings, brick_name)
    attributes = {
        **expected_attributes(settings, brick_name),
        "pixel_convention": PIXEL_CONVENTION,
        "inputs": [str(table_path), *made.inputs],
        "dr5_dir": str(settings.dr5_dir),
        "obiwan_dir": str(settings.obiwan_dir) if settings.obiwan_dir is not None else "",
        "package_version": __version__,
        **asdict(made.counts),
        **made.attributes,
    }
    catalog = made.catalog[catalog_columns(settings.bands)].reset_index(drop=True)
    write_cutouts_file(out, made.stamps, catalog, attributes, column_descriptions(settings.bands))
    return made.counts


def column_descriptions(bands: Sequence[str]) -> dict[str, str]:
    """``{column: description}`` for every catalog column (stored as each dataset's ``description``)."""
    descriptions = {}
    for name, description in CATALOG_DESCRIPTION.items():
        for band in bands if "{band}" in name else [None]:
            descriptions[name.format(band=band)] = description
    return descriptions


# --------------------------------------------------------------------------- many bricks


def read_brick_list(path: Path) -> list[str]:
    """Brick names from a text file, one per line; blank lines and text after # are ignored."""
    path = Path(path)
    if not path.is_file():
        raise RealfakeError(f"brick list not found: {path}")
    names = []
    for line_number, line in enumerate(path.read_text().splitlines(), start=1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        try:
            survey.brick_subdir(name)
        except RealfakeError as error:
            raise RealfakeError(f"{path}, line {line_number}: {error}") from None
        names.append(name)
    if not names:
        raise RealfakeError(f"brick list {path} names no bricks")
    return names


def _mpi_rank_and_size() -> tuple[int, int]:
    """This process's rank and the number of ranks (0, 1 without MPI or mpi4py).

    mpi4py is imported here, not at module level: importing it initialises MPI.
    """
    try:
        from mpi4py import MPI
    except ImportError:
        return 0, 1
    return MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()


def make_cutouts_batch(
    settings: CutoutSettings, bricks_file: Path, out_dir: Path, progress: TextIO | None = None
) -> CutoutCounts:
    """Make the cutouts of every brick in ``bricks_file`` as ``<out_dir>/<AAA>/<brick>.h5``.

    Under ``mpiexec -n N`` (or ``srun -n N``) rank r takes bricks r, r + N, ...
    A brick whose file exists and is complete (:func:`cutouts_file_is_complete`)
    is skipped, so a killed batch can be restarted. A brick with bad input is
    reported and the rest still run; then RealfakeError lists the failures.
    One line per brick goes to ``progress``. Returns this rank's counts.
    """
    progress = progress or sys.stderr
    bricks = read_brick_list(bricks_file)
    survey_bricks = read_survey_bricks(settings.dr5_dir)
    rank, size = _mpi_rank_and_size()
    mine = bricks[rank::size]
    prefix = f"cutouts {settings.kind} [rank {rank}/{size}]"
    total, failures = CutoutCounts(), []
    for index, brick_name in enumerate(mine, start=1):
        out = cutouts_path(out_dir, brick_name)
        position = f"brick {brick_name} ({index}/{len(mine)})"
        if cutouts_file_is_complete(out, expected_attributes(settings, brick_name), catalog_columns(settings.bands)):
            print(f"{prefix} {position}: {out} exists and is complete, skipped", file=progress, flush=True)
            continue
        start = time.perf_counter()
        try:
            counts = make_cutouts(settings, brick_name, out, survey_bricks)
        except RealfakeError as error:
            failures.append(f"{brick_name}: {error}")
            print(f"{prefix} {position}: error: {error}", file=progress, flush=True)
            continue
        total = total + counts
        elapsed = time.perf_counter() - start
        print(f"{prefix} {position}: {counts.summary()}, {elapsed:.1f} s", file=progress, flush=True)
    if failures:
        raise RealfakeError(f"{len(failures)} of {len(mine)} bricks failed on rank {rank}; first: {failures[0]}")
    return total
