"""The tractor catalog schema of each release the mock writes (``MockSettings.release``).

The mock measures its sources in DR5's columns (:func:`realfake.mock.population.measure`);
:func:`release_columns` rewrites such a catalog, ``{name: (fits_format, values)}`` as
:func:`realfake.mock.files.write_table` takes it, in the schema legacypipe writes for DR9 (DR9.6.9,
DECam south) or DR10 (DR10.1.3) (docs in ../shared/FORMATS.md section 1):

- ``release`` int16: 9010 (DR9 south) or 10000 (DR10);
- ``type`` ``3A``, unpadded, of PSF REX EXP DEV SER DUP. DR9 has no COMP: a DR5 COMP (de Vaucouleurs
  fraction ``fracdev``) becomes a SER of Sersic index ``1 + 3 fracdev`` (the exponential's 1 to the de
  Vaucouleurs' 4 in proportion to the de Vaucouleurs light) with the fracdev-weighted half-light radius
  and ellipticity;
- ``sersic, shape_r, shape_e1, shape_e2`` (+ ``_ivar``) replace ``fracdev, shapeexp_*, shapedev_*``:
  REX fills only ``shape_r``, EXP, DEV and SER all three, PSF none; ``sersic`` is 0 but for SER;
- ``maskbits``: int16 (DR9) or int32 (DR10, whose bit 16 SUB_BLOB overflows int16), 0 but on every
  :data:`MASKED_EVERY`-th source; ``fitbits`` int16, 0;
- DR10 only: every per-band column in the i band too. Where the mock renders i (``bands`` griz) they are
  measured as the other bands'; otherwise zero (no i coverage), as legacypipe zero-fills a band without data, but
  for ``mw_transmission_i``, which legacypipe computes from E(B-V) for every band;
- :data:`DUPLICATES` DUP rows appended: Gaia stars already fitted by another model, with no optical
  flux, which readers must drop.

Every other row keeps its values, and nothing here draws a random number. The catalogs are not all the release
changes: the fakes of an rs dir are selected on their measured values in the release's schema
(:func:`release_catalog`, :mod:`realfake.mock.fakes`), as the cutouts stage selects the reals, so from DR9 on
a disk-like COMP (``fracdev`` below 0.5: a SER of index below 2.5) can be a fake, and where one is, the rs dirs'
simcats, images and re-fits differ from DR5's. The DR5 tree's images and the truth never change.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from realfake.mock.population import EXTINCTION_COEFFICIENTS, PIXEL_SCALE

Columns = dict[str, tuple[str, np.ndarray]]

RELEASE_NUMBER = {"dr5": 5000, "dr9": 9010, "dr10": 10000}  # DR5; DR9 DECam south; DR10
MASKBITS_FORMAT = {"dr9": "I", "dr10": "J"}
# The mock models no masks: a sprinkle of non-zero maskbits so that readers parse them. WISEM1 (bit 8), a
# WISE bright-star mask that no optical selection cuts on, and in DR10 SUB_BLOB (bit 16), which needs int32.
MASKED_EVERY = 20  # objid 0, 20, 40, ...
WISEM1, SUB_BLOB = 1 << 8, 1 << 16
DUPLICATES = 3  # DUP rows per catalog
DUPLICATE_OFFSET = 0.05  # arcsec north of the source it duplicates: a Gaia position beside the fitted one
DR5_SHAPE_COLUMNS = tuple(
    f"{name}{suffix}"
    for name in ("fracdev", *(f"shape{model}_{part}" for model in ("exp", "dev") for part in ("r", "e1", "e2")))
    for suffix in ("", "_ivar")
)
# Columns a DUP row leaves at zero: the fit's, not the position's (nobs, depths and masks are kept).
FIT_PREFIXES = ("flux_", "flux_ivar_", "shape_", "sersic", "rchisq_", "fracflux_", "fracmasked_", "fracin_")


def release_columns(columns: Columns, release: str, sources: int) -> Columns:
    """A DR5 tractor catalog ``columns`` in ``release``'s schema; ``columns`` itself for dr5.

    ``sources``: how many leading rows are the brick's own sources (an rs dir's re-fit lists them, then the
    fakes); the DUP rows duplicate the brightest of them, PSF first, so that the DR5 tree's catalog and each
    rs dir's carry the same ones (their objids follow each catalog's last row).
    """
    if release == "dr5":
        return columns
    return _with_duplicates(schema_columns(columns, release), sources)


def schema_columns(columns: Columns, release: str) -> Columns:
    """A DR5 tractor catalog ``columns`` in ``release``'s schema row for row, without the DUP rows that
    :func:`release_columns` appends; ``columns`` itself for dr5. ``columns`` needs ``type`` (padded or not),
    ``objid``, the DR5 shape columns with their ``_ivar`` and, for dr10, ``ebv``."""
    if release == "dr5":
        return columns
    types = np.char.strip(columns["type"][1].astype(str))
    converted: Columns = {}
    for name, column in columns.items():
        if name == "fracdev":
            if release == "dr10":
                converted.update(_i_band_columns(columns))
            converted.update(_shape_columns(columns, types))
        if name not in DR5_SHAPE_COLUMNS:
            converted[name] = column
    count = len(types)
    converted["release"] = ("I", np.full(count, RELEASE_NUMBER[release], dtype=np.int16))
    converted["type"] = ("3A", np.where(types == "COMP", "SER", types).astype("U3"))
    masked = columns["objid"][1] % MASKED_EVERY == 0
    bits = WISEM1 | (SUB_BLOB if release == "dr10" else 0)
    dtype = np.int16 if MASKBITS_FORMAT[release] == "I" else np.int32
    converted["maskbits"] = (MASKBITS_FORMAT[release], np.where(masked, bits, 0).astype(dtype))
    converted["fitbits"] = ("I", np.zeros(count, dtype=np.int16))
    return converted


def release_catalog(measured: pd.DataFrame, release: str, ebv: float) -> pd.DataFrame:
    """The rows ``measured`` (DR5 tractor columns and types, one row per source, as
    :func:`realfake.mock.population.measure` gives them) as ``release``'s tractor catalog holds them, without
    writing it: :func:`schema_columns` of them with ``release`` (the DR5 number for dr5), ``objid`` (the row
    number) and ``ebv`` (E(B-V) of the brick) added; same index, no DUP rows. The values are converted as the
    writer converts them (DR9's shapes float32, types unpadded as the reader strips them), so a selection sees
    what it would see in the catalog written."""
    count = len(measured)
    # The FITS formats matter only to the writer; schema_columns keeps the values.
    columns: Columns = {
        "release": ("I", np.full(count, RELEASE_NUMBER["dr5"], dtype=np.int16)),
        "objid": ("J", np.arange(count, dtype=np.int32)),
        "ebv": ("E", np.full(count, ebv, dtype=np.float32)),
    }
    columns.update({name: ("", measured[name].to_numpy()) for name in measured.columns})
    converted = schema_columns(columns, release)
    return pd.DataFrame({name: values for name, (_, values) in converted.items()}, index=measured.index)


def _shape_columns(columns: Columns, types: np.ndarray) -> Columns:
    """DR9's ``sersic, shape_r, shape_e1, shape_e2`` and their ``_ivar`` from DR5's shapes; a COMP is a SER of
    index 1 + 3 fracdev and of the fracdev-weighted radius and ellipticity."""

    def values(name: str) -> np.ndarray:
        return columns[name][1].astype(np.float64)

    fracdev = values("fracdev")
    exponential, de_vaucouleurs, composite = np.isin(types, ("REX", "EXP")), types == "DEV", types == "COMP"
    shapes: Columns = {
        "sersic": ("E", np.where(composite, 1 + 3 * fracdev, 0.0).astype(np.float32)),
        # n = 1 + 3 fracdev: var(n) = 9 var(fracdev).
        "sersic_ivar": ("E", np.where(composite, values("fracdev_ivar") / 9, 0.0).astype(np.float32)),
    }
    for part in ("r", "e1", "e2"):
        exp, dev = values(f"shapeexp_{part}"), values(f"shapedev_{part}")
        exp_ivar, dev_ivar = values(f"shapeexp_{part}_ivar"), values(f"shapedev_{part}_ivar")
        with np.errstate(divide="ignore", invalid="ignore"):
            # The weighted mean's variance, (1 - f)^2 var_exp + f^2 var_dev; 0 where either is unmeasured.
            variance = (1 - fracdev) ** 2 / exp_ivar + fracdev**2 / dev_ivar
            weighted_ivar = np.where((exp_ivar > 0) & (dev_ivar > 0), 1 / variance, 0.0)
        # REX: shapeexp_e1, e2 are already 0 (with ivar 0); PSF: every shape is 0.
        models = [exponential, de_vaucouleurs, composite]
        value = np.select(models, [exp, dev, (1 - fracdev) * exp + fracdev * dev], 0.0)
        ivar = np.select(models, [exp_ivar, dev_ivar, weighted_ivar], 0.0)
        shapes[f"shape_{part}"] = ("E", value.astype(np.float32))
        shapes[f"shape_{part}_ivar"] = ("E", ivar.astype(np.float32))
    return shapes


def _i_band_columns(columns: Columns) -> Columns:
    """DR10's i-band columns the catalog ``columns`` lacks, one for each z-band column: zero (no i coverage) but
    ``mw_transmission_i``; none when the mock measured the i band."""
    if "flux_i" in columns:
        return {}
    ebv = columns["ebv"][1].astype(np.float64)
    i_band: Columns = {}
    for name, (fits_format, values) in columns.items():
        if name.endswith("_z"):
            zeros = np.zeros(len(values), dtype=values.dtype)
            i_band[name.removesuffix("_z") + "_i"] = (fits_format, zeros)
    i_band["mw_transmission_i"] = ("E", (10 ** (-0.4 * EXTINCTION_COEFFICIENTS["i"] * ebv)).astype(np.float32))
    return i_band


def _with_duplicates(columns: Columns, sources: int) -> Columns:
    """``columns`` with :data:`DUPLICATES` DUP rows appended, beside the brightest PSF rows of the first
    ``sources`` (rows are in brightness order; other types make up the number when there are too few PSFs)."""
    types = columns["type"][1]
    duplicated = np.argsort(types[:sources] != "PSF", kind="stable")[:DUPLICATES]
    count, extra = len(types), len(duplicated)
    result: Columns = {}
    for name, (fits_format, values) in columns.items():
        added = values[duplicated].copy()
        if name.startswith(FIT_PREFIXES):
            added[:] = 0
        result[name] = (fits_format, np.concatenate([values, added]))
    result["type"][1][count:] = "DUP"
    result["objid"][1][count:] = np.arange(count, count + extra)
    result["brick_primary"][1][count:] = True
    # North is +Dec and +y (the coadds' CD matrix).
    result["dec"][1][count:] += DUPLICATE_OFFSET / 3600
    result["by"][1][count:] += DUPLICATE_OFFSET / PIXEL_SCALE
    return result
