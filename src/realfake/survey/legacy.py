"""Reading Legacy Surveys files: FITS access, brick table, coadds, WCS, tractor catalogs (DR5 to DR10).

Every later stage reads survey files through this module and
:mod:`realfake.survey.obiwan` (rs dirs and simcats; an rs dir's coadds and
tractor catalog are in legacypipe's formats and are read here), so the conventions
live here once (``docs/data_layout.md``). Which release a tractor catalog is, and
its shape columns, are :mod:`realfake.survey.tractor`'s.

- Pixels: numpy arrays are indexed ``[band, y, x]``, 0-indexed. Tractor
  ``bx, by`` are 0-indexed (FITS pixel minus 1); simcat ``x, y`` are 1-indexed
  FITS pixels and are exposed as ``x_fits, y_fits`` with 0-indexed ``x, y``.
- Units: images in nanomaggies per pixel, inverse variance in 1/nanomaggy^2
  (0 = no coverage), magnitudes ``22.5 - 2.5 log10(flux)`` via
  :func:`nanomaggies_to_mag`, applied to dereddened fluxes
  (``flux / mw_transmission``) for reals and fakes alike.

Any problem a user can cause raises :class:`~realfake.errors.RealfakeError`
naming the file, brick or column.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS
from numpy.typing import ArrayLike

from realfake.conventions import BANDS
from realfake.errors import RealfakeError
from realfake.paths import COADD_KINDS, brick_table_candidates, coadd_name
from realfake.survey.tractor import (
    detect_release,
    drop_duplicates,
    shape_columns,
    tractor_required_columns,
)

BRICK_COLUMNS = ("brickname", "brickid", "ra", "dec", "ra1", "ra2", "dec1", "dec2")

# Tolerances for "the same WCS": far below a pixel (7.3e-5 deg) yet above float rounding.
_CRVAL_TOLERANCE_DEG = 1e-9
_CRPIX_TOLERANCE_PX = 1e-6
_CD_TOLERANCE_DEG = 1e-12


def nanomaggies_to_mag(flux: ArrayLike) -> np.ndarray:
    """AB magnitude of a flux in nanomaggies: ``22.5 - 2.5 log10(flux)``.

    Returns float64 with the shape of ``flux``; NaN where flux <= 0 or is not finite.
    """
    flux = np.asarray(flux, dtype=np.float64)
    positive = np.isfinite(flux) & (flux > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(positive, 22.5 - 2.5 * np.log10(np.where(positive, flux, 1.0)), np.nan)


# --------------------------------------------------------------------------- FITS access


def _read_hdu(path: Path) -> tuple[np.ndarray | fits.FITS_rec, fits.Header]:
    """Data (fully read) and header of HDU 1.

    Any failure (missing, truncated or corrupt file) becomes a RealfakeError naming ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise RealfakeError(f"file not found: {path}")
    data, problem = None, None
    # astropy only *warns* that a file is truncated, then fails (or not) in varied ways;
    # its other warnings while reading (header fix-ups) are dropped.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(path, memmap=False) as hdul:
                if len(hdul) < 2:
                    raise RealfakeError(f"{path} has no HDU 1 (it has {len(hdul)} HDU)")
                header = hdul[1].header.copy()
                data = hdul[1].data
                if data is None:
                    raise RealfakeError(f"HDU 1 of {path} holds no data")
                # A decompressed image is already an array of its own (memmap=False); tables are copied.
                data = data if isinstance(hdul[1], fits.CompImageHDU) else data.copy()
        except RealfakeError:
            raise
        except Exception as error:  # astropy reports corrupt files with many exception types
            problem = f"{type(error).__name__}: {error}"
    truncated = [str(warning.message) for warning in caught if "truncated" in str(warning.message)]
    if truncated:
        raise RealfakeError(f"FITS file {path} is truncated: {truncated[0]}")
    if problem is not None:
        raise RealfakeError(f"cannot read FITS file {path}: {problem}")
    return data, header


def _table_to_frame(table: fits.FITS_rec, path: Path) -> pd.DataFrame:
    """A FITS table as a DataFrame: lower-case names, native byte order, text decoded and stripped.

    Multi-dimensional columns (e.g. ``apflux_g``, shape (N, 8)) are dropped.
    """
    columns: dict[str, np.ndarray] = {}
    for name in table.columns.names:
        values = np.asarray(table[name])
        if values.ndim != 1:
            continue
        key = name.lower()
        if key in columns:
            raise RealfakeError(f"{path} has two columns named {key!r} when case is ignored")
        if values.dtype.kind == "S":
            values = np.char.decode(values, "ascii")
        if values.dtype.kind == "U":
            values = np.char.strip(values)
        elif not values.dtype.isnative:
            values = values.astype(values.dtype.newbyteorder("="))
        columns[key] = values
    return pd.DataFrame(columns)


def read_fits_table(path: Path) -> pd.DataFrame:
    """HDU 1 of a FITS table as a DataFrame (lower-case names, native byte order, text stripped)."""
    table, _ = _read_hdu(path)
    return _table_to_frame(table, path)


def _require_columns(frame: pd.DataFrame, required: Sequence[str], path: Path, what: str) -> None:
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise RealfakeError(f"{what} {path} lacks required column(s): {', '.join(missing)}")


# --------------------------------------------------------------------------- brick table


@dataclass(frozen=True)
class Brick:
    """One row of the DR5 brick table; all angles in degrees (ra1..ra2, dec1..dec2 = brick edges)."""

    name: str
    brickid: int
    ra: float
    dec: float
    ra1: float
    ra2: float
    dec1: float
    dec2: float


def find_brick_table(dr5_dir: Path) -> Path:
    """The brick table of the tree ``dr5_dir``: the first of :func:`realfake.paths.brick_table_candidates` that
    exists (``survey-bricks.fits.gz`` as the releases ship it, else ``survey-bricks.fits``; in ``dr5_dir``, else in
    its parent, where DR8-DR10 keep it above their region directories)."""
    candidates = brick_table_candidates(str(dr5_dir))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return Path(candidate)
    raise RealfakeError(f"no survey brick table: none of {', '.join(candidates)} exists")


def read_brick_table(path: Path) -> dict[str, Brick]:
    """Bricks of a ``survey-bricks`` table keyed by brick name (column names of either case)."""
    table, _ = _read_hdu(path)
    frame = _table_to_frame(table, Path(path))
    _require_columns(frame, BRICK_COLUMNS, path, "brick table")
    return {
        str(name): Brick(
            str(name), int(brickid), float(ra), float(dec), float(ra1), float(ra2), float(dec1), float(dec2)
        )
        for name, brickid, ra, dec, ra1, ra2, dec1, dec2 in frame[list(BRICK_COLUMNS)].itertuples(index=False)
    }


def lookup_brick(table: Mapping[str, Brick], brick_name: str, table_path: Path) -> Brick:
    """The brick called ``brick_name``; ``table_path`` only names the table in the error."""
    try:
        return table[brick_name]
    except KeyError:
        raise RealfakeError(f"brick {brick_name} is not in the survey brick table {table_path}") from None


# --------------------------------------------------------------------------- coadds and WCS


def _celestial_wcs(header: fits.Header, path: Path) -> WCS:
    try:
        with warnings.catch_warnings():
            # DR5 headers trigger harmless "fixed DATE-OBS"-style notices.
            warnings.simplefilter("ignore", AstropyWarning)
            wcs = WCS(header).celestial
    except Exception as error:
        raise RealfakeError(f"cannot build a WCS from HDU 1 of {path}: {error}") from error
    if wcs.naxis != 2:
        raise RealfakeError(f"HDU 1 of {path} has no celestial WCS")
    return wcs


def same_wcs(first: WCS, second: WCS) -> bool:
    """Whether two celestial WCS agree in CTYPE, CRVAL, CRPIX and CD, to far below a pixel."""
    return (
        list(first.wcs.ctype) == list(second.wcs.ctype)
        and np.allclose(first.wcs.crval, second.wcs.crval, rtol=0, atol=_CRVAL_TOLERANCE_DEG)
        and np.allclose(first.wcs.crpix, second.wcs.crpix, rtol=0, atol=_CRPIX_TOLERANCE_PX)
        and np.allclose(first.pixel_scale_matrix, second.pixel_scale_matrix, rtol=0, atol=_CD_TOLERANCE_DEG)
    )


def _read_image(path: Path) -> tuple[np.ndarray, fits.Header, WCS]:
    """2-d image, header and celestial WCS of HDU 1 of a coadd file."""
    data, header = _read_hdu(path)
    if data.ndim != 2:
        raise RealfakeError(f"{path}: HDU 1 is not a 2-d image (shape {data.shape})")
    return data, header, _celestial_wcs(header, path)


@dataclass(frozen=True, eq=False)  # eq=False: element-wise array comparison has no single truth value
class Coadd:
    """The coadd of one brick (or one obiwan rs dir) in several bands.

    image: float32 (B, H, W), nanomaggies per pixel, bands in ``bands`` order,
    rows = y and columns = x, 0-indexed (FITS pixel (1, 1) is ``image[:, 0, 0]``).
    inverse_variance: float32 (B, H, W), 1/nanomaggy^2; 0 means no coverage.
    Pixels whose image is NaN hold image 0 and inverse variance 0.
    wcs: the celestial TAN WCS shared by every file; header: HDU 1 header of the
    first band's image; paths: the files read (image, invvar per band).
    """

    brick_name: str
    bands: tuple[str, ...]
    image: np.ndarray
    inverse_variance: np.ndarray
    wcs: WCS
    header: fits.Header
    paths: tuple[Path, ...]


def read_coadd(coadd_dir: Path, brick_name: str, bands: Sequence[str] = BANDS) -> Coadd:
    """Read image and inverse variance of ``bands`` from HDU 1 of the ``.fits.fz`` files in ``coadd_dir``.

    Every file must exist, have the same shape and the same WCS; otherwise a
    RealfakeError names the offending files. A band with neither file, or whose
    inverse variance is 0 everywhere, is a band the brick was not observed in
    (DR10's i band covers part of the sky): refused, naming the brick and the
    band, never filled with zeros, which the CNN would learn as a feature.
    """
    bands = tuple(bands)
    if not bands:
        raise RealfakeError(f"no bands requested for brick {brick_name}")
    paths = [Path(coadd_dir) / coadd_name(brick_name, kind, band) for band in bands for kind in COADD_KINDS]
    _check_coadd_files(paths, brick_name, bands)

    first_data, first_header, first_wcs = _read_image(paths[0])
    image = np.empty((len(bands), *first_data.shape), dtype=np.float32)
    inverse_variance = np.empty_like(image)
    for index, path in enumerate(paths):
        data, _, wcs = (first_data, first_header, first_wcs) if index == 0 else _read_image(path)
        if data.shape != first_data.shape:
            raise RealfakeError(f"{path} has shape {data.shape} but {paths[0]} has shape {first_data.shape}")
        if not same_wcs(first_wcs, wcs):
            raise RealfakeError(f"{path} and {paths[0]} have different WCS (CRVAL, CRPIX or CD differ)")
        # paths alternate image, invvar for each band
        (inverse_variance if index % 2 else image)[index // 2] = data

    for band_image, band_inverse_variance in zip(image, inverse_variance):
        not_finite = ~np.isfinite(band_image)
        if not_finite.any():
            band_image[not_finite] = 0.0
            band_inverse_variance[not_finite] = 0.0
        # NaN or negative inverse variance fails ">= 0"; +inf is not coverage either.
        bad = ~(band_inverse_variance >= 0) | np.isinf(band_inverse_variance)
        if bad.any():
            band_inverse_variance[bad] = 0.0
    for band, band_inverse_variance, path in zip(bands, inverse_variance, paths[1::2]):
        if not band_inverse_variance.any():
            raise RealfakeError(_uncovered_band(brick_name, band, f"{path} is 0 everywhere"))
    return Coadd(brick_name, bands, image, inverse_variance, first_wcs, first_header, tuple(paths))


def _check_coadd_files(paths: Sequence[Path], brick_name: str, bands: Sequence[str]) -> None:
    """RealfakeError unless every coadd file (``paths``: image, invvar per band) exists; a band with neither is
    one the brick was not observed in, and the message says so."""
    missing = [str(path) for path in paths if not path.is_file()]
    for band, image, invvar in zip(bands, paths[0::2], paths[1::2]):
        if str(image) in missing and str(invvar) in missing:
            raise RealfakeError(_uncovered_band(brick_name, band, f"neither {image} nor {invvar} exists"))
    if missing:
        raise RealfakeError(f"brick {brick_name}: coadd file(s) not found: {', '.join(missing)}")


def _uncovered_band(brick_name: str, band: str, evidence: str) -> str:
    return (
        f"brick {brick_name} has no coverage in band {band} ({evidence}): leave {band} out of the bands, or the "
        "brick out of the brick list"
    )


def wcs_pixel(wcs: WCS, ra: ArrayLike, dec: ArrayLike, origin: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pixel x, y (float64) of sky positions ra, dec (deg); 0-indexed for origin=0, FITS for origin=1."""
    x, y = wcs.all_world2pix(np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64), origin)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


# --------------------------------------------------------------------------- catalogs


def add_dereddened(frame: pd.DataFrame, bands: Sequence[str]) -> None:
    """Add ``flux_dered_<b> = flux_<b> / mw_transmission_<b>`` and its ``mag_dered_<b>``, in place.

    Reals and fakes both go through here, so their magnitudes are comparable.
    """
    for band in bands:
        dered = frame[f"flux_{band}"].to_numpy(np.float64) / frame[f"mw_transmission_{band}"].to_numpy(np.float64)
        frame[f"flux_dered_{band}"] = dered
        frame[f"mag_dered_{band}"] = nanomaggies_to_mag(dered)


def read_tractor(path: Path, bands: Sequence[str] = BANDS) -> pd.DataFrame:
    """A tractor catalog of DR5 to DR10 as a DataFrame, one row per source.

    Column names are the file's, lower-case; ``type`` ("PSF", "REX", "EXP", "DEV", and "COMP" up to DR8, "SER"
    from DR9) and ``brickname`` are stripped strings; ``bx, by`` are float64, 0-indexed pixels (FITS pixel
    minus 1); ``brick_primary`` is bool; ``maskbits``, where there is one, int32 (DR10's bit 16 overflows
    DR9's int16). Multi-dimensional columns (``apflux_*``, ``dchisq``) are dropped. DUP rows (Gaia stars kept
    as duplicates of a source fitted under another model, no optical flux: DR8 and later) are dropped.

    Added per band: ``flux_dered_<b> = flux_<b> / mw_transmission_<b>`` (nanomaggies) and ``mag_dered_<b>``
    (AB, NaN where the flux is not positive); once for every release, the canonical shape columns ``rhalf``
    (arcsec; a PSF's from the mean ``psfsize`` over ``bands``), ``sersic_n``, ``e1``, ``e2``
    (:mod:`realfake.survey.tractor`). ``attrs``: ``path``, ``release`` (the data release: "dr5" ... "dr10"),
    ``schema`` (its column layout: "dr5", "dr8", "dr9" or "dr10") and ``dropped_dup`` (the DUP rows dropped).

    A catalog whose release and shape columns disagree is refused (:func:`realfake.survey.tractor.detect_release`).
    """
    path = Path(path)
    table, _ = _read_hdu(path)
    frame = _table_to_frame(table, path)
    _require_columns(frame, tractor_required_columns(bands), path, "tractor catalog")
    release = detect_release(frame, path)
    frame, dropped_dup = drop_duplicates(frame)
    if "maskbits" in frame.columns:
        frame["maskbits"] = frame["maskbits"].astype(np.int32)
    frame["bx"] = frame["bx"].astype(np.float64)
    frame["by"] = frame["by"].astype(np.float64)
    frame["brick_primary"] = frame["brick_primary"].astype(bool)
    add_dereddened(frame, bands)
    for name, values in shape_columns(frame, bands, release.schema).items():
        frame[name] = values.to_numpy()
    frame.attrs.update(path=str(path), release=release.name, schema=release.schema, dropped_dup=dropped_dup)
    return frame
