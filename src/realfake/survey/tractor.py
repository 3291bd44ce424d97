"""Tractor catalogs of Legacy Surveys DR5 to DR10: which release a catalog is, and the shape columns every stage
uses whatever the release (``docs/data_layout.md``, "DR8, DR9 and DR10 catalogs").

:func:`realfake.survey.legacy.read_tractor` reads the file and calls these; they work on DataFrames only, so
that :mod:`realfake.survey.selection` can also give the shape columns to a table that was never a file.

Schemas (legacypipe ``format_catalog.py``), told apart by the ``release`` column and checked against the columns:

- ``"dr5"`` (DR5, DR6, DR7; release 5000-7999): ``fracdev``, ``shapeexp_{r,e1,e2}``, ``shapedev_{r,e1,e2}``;
  types PSF, REX, EXP, DEV, COMP.
- ``"dr8"`` (release 8000-8999): the dr5 shape columns, ``maskbits`` int16; types as dr5 plus DUP.
- ``"dr9"`` (release 9000-9999): ``shape_r`` (arcsec), ``shape_e1``, ``shape_e2``, ``sersic``; types PSF, REX,
  EXP, DEV, SER, DUP; ``maskbits`` int16.
- ``"dr10"`` (release 10000 and above): dr9's columns; ``maskbits`` int32 (bit 16, SUB_BLOB, needs it).

The canonical shape columns (:data:`CANONICAL_COLUMNS`, float64, one value per row; the names read_simcat gives the
fakes' true shapes) are:

- ``rhalf``: half-light radius in arcsec as obiwan defines it for the size cut: PSF the mean ``psfsize`` (FWHM)
  over the bands read, divided by 2; dr5/dr8 REX, EXP (and the older SIMP) ``shapeexp_r``, DEV ``shapedev_r``, COMP
  the ``fracdev``-weighted mean of the two; dr9/dr10 REX, EXP, DEV, SER ``shape_r``.
- ``sersic_n``: Sersic index: REX, EXP 1; DEV 4; SER its ``sersic`` column; PSF and COMP NaN (the ``sersic``
  column itself is 0 for every type but SER).
- ``e1, e2``: legacypipe ellipticity, ``|e| = (1 - b/a) / (1 + b/a)``: PSF 0; dr5/dr8 ``shapeexp_e*`` for the
  exponential types and ``shapedev_e*`` for DEV, COMP NaN; dr9/dr10 ``shape_e*`` (REX's are 0).

Types of any other name get NaN in all four.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.errors import RealfakeError

DR5_SHAPE_COLUMNS = ("fracdev", "shapeexp_r", "shapeexp_e1", "shapeexp_e2", "shapedev_r", "shapedev_e1", "shapedev_e2")
DR9_SHAPE_COLUMNS = ("shape_r", "shape_e1", "shape_e2", "sersic")
# The shape columns of each schema.
SHAPE_COLUMNS = {"dr5": DR5_SHAPE_COLUMNS, "dr8": DR5_SHAPE_COLUMNS, "dr9": DR9_SHAPE_COLUMNS}
SHAPE_COLUMNS["dr10"] = DR9_SHAPE_COLUMNS
CANONICAL_COLUMNS = ("rhalf", "sersic_n", "e1", "e2")
# Exponential profiles: REX (round exponential), EXP, and SIMP (before DR5, the round exponential REX replaced).
EXPONENTIAL_TYPES = ("REX", "EXP", "SIMP")
# Gaia stars legacypipe kept as duplicates of a source fitted under another model: no optical flux of their own.
DUPLICATE_TYPE = "DUP"
# Types whose dr9/dr10 shape comes from shape_r, shape_e1, shape_e2.
_DR9_GALAXY_TYPES = ("REX", "EXP", "DEV", "SER")
_RELEASE_RANGES = "5000-7999 DR5-DR7, 8000-8999 DR8, 9000-9999 DR9, 10000 and above DR10"


@dataclass(frozen=True)
class TractorRelease:
    """Which data release a tractor catalog is: ``name`` "dr5" ... "dr10" (the data release itself: DR6 and DR7
    catalogs are "dr6", "dr7") and ``schema``, the column layout it shares ("dr5", "dr8", "dr9" or "dr10")."""

    name: str
    schema: str


def tractor_required_columns(bands: Sequence[str]) -> list[str]:
    """Columns every tractor catalog must have, whatever its release, to be read for ``bands``."""
    required = ["release", "objid", "brickname", "ra", "dec", "bx", "by", "type", "brick_primary"]
    for band in bands:
        required += [f"flux_{band}", f"flux_ivar_{band}", f"mw_transmission_{band}", f"nobs_{band}", f"psfsize_{band}"]
    return required


def _release_of_numbers(numbers: Sequence[int], path: Path | str) -> TractorRelease:
    """The release of a catalog whose ``release`` column holds ``numbers``; RealfakeError naming ``path`` when they
    mix data releases or are not DR5-DR10."""
    data_releases = sorted({number // 1000 for number in numbers})
    if len(data_releases) > 1:
        values = ", ".join(map(str, numbers))
        raise RealfakeError(f"tractor catalog {path} mixes data releases: release values {values}")
    data_release = data_releases[0]
    if 5 <= data_release <= 7:
        schema = "dr5"
    elif data_release >= 8:
        schema = {8: "dr8", 9: "dr9"}.get(data_release, "dr10")
    else:
        raise RealfakeError(f"tractor catalog {path} has release {numbers[0]}, not one of DR5-DR10 ({_RELEASE_RANGES})")
    return TractorRelease(f"dr{data_release}", schema)


def _release_of_columns(frame: pd.DataFrame) -> TractorRelease | None:
    """The release an empty catalog's columns suggest (its shape columns, and the width of ``maskbits``)."""
    if all(column in frame.columns for column in DR9_SHAPE_COLUMNS):
        wide = "maskbits" in frame.columns and frame["maskbits"].dtype.itemsize >= 4
        schema = "dr10" if wide else "dr9"
    elif all(column in frame.columns for column in DR5_SHAPE_COLUMNS):
        schema = "dr8" if "maskbits" in frame.columns else "dr5"
    else:
        return None
    return TractorRelease(schema, schema)


def _shape_mismatch(
    frame: pd.DataFrame, path: Path | str, numbers: Sequence[int], release: TractorRelease | None
) -> RealfakeError:
    """The error for a catalog without the shape columns of its release (or with neither set of them)."""
    found = [column for column in (*DR5_SHAPE_COLUMNS, *DR9_SHAPE_COLUMNS) if column in frame.columns]
    if release is None:
        expected = f"{', '.join(DR5_SHAPE_COLUMNS)} (DR5-DR8) or {', '.join(DR9_SHAPE_COLUMNS)} (DR9, DR10)"
    else:
        expected = f"{', '.join(SHAPE_COLUMNS[release.schema])} ({release.schema} schema)"
    said = f"release {', '.join(map(str, numbers))}" if numbers else "no rows"
    return RealfakeError(
        f"tractor catalog {path} ({said}) lacks the shape columns of its release: expected {expected}; "
        f"found {', '.join(found) or 'none'}"
    )


def detect_release(frame: pd.DataFrame, path: Path | str) -> TractorRelease:
    """The release of the tractor catalog ``frame`` (read from ``path``, or a table that ``path`` describes): from
    its ``release`` column (an empty catalog: from its columns), checked against its shape columns.

    RealfakeError naming ``path`` when the rows mix data releases, the release is not DR5-DR10, or the catalog
    lacks the shape columns of its release (e.g. release 9010 with only DR5's shape columns, or neither set).
    """
    numbers = sorted({int(number) for number in np.unique(frame["release"].to_numpy())})
    release = _release_of_numbers(numbers, path) if numbers else _release_of_columns(frame)
    if release is None or any(column not in frame.columns for column in SHAPE_COLUMNS[release.schema]):
        raise _shape_mismatch(frame, path, numbers, release)
    return release


def drop_duplicates(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``frame`` without its DUP rows (index 0..n-1 again), and how many there were."""
    duplicate = frame["type"].to_numpy().astype(str) == DUPLICATE_TYPE
    if not duplicate.any():
        return frame, 0
    return frame[~duplicate].reset_index(drop=True), int(duplicate.sum())


def _per_type(source_type: np.ndarray, rules: dict[tuple[str, ...], np.ndarray | float]) -> np.ndarray:
    """float64 per row: the value of the rule whose types hold the row's type (a per-row array or one number);
    NaN for a type no rule names."""
    values = np.full(len(source_type), np.nan)
    for types, value in rules.items():
        rows = np.isin(source_type, types)
        values[rows] = value[rows] if isinstance(value, np.ndarray) else value
    return values


def _column(catalog: pd.DataFrame, name: str) -> np.ndarray:
    return np.asarray(catalog[name], dtype=np.float64)


def _has_dr9_shapes(catalog: pd.DataFrame, schema: str | None) -> bool:
    """Whether ``catalog`` takes dr9's shape formulas: by ``schema``, or when None by its having ``shape_r``."""
    return schema in ("dr9", "dr10") if schema else "shape_r" in catalog.columns


def half_light_radius(catalog: pd.DataFrame, bands: Sequence[str], schema: str | None = None) -> np.ndarray:
    """Canonical ``rhalf`` (arcsec, float64) of the tractor rows ``catalog`` (see the module), the PSF radius
    averaged over ``bands``. ``schema`` None: dr9's formulas if the catalog has ``shape_r``, else dr5's."""
    source_type = np.asarray(catalog["type"]).astype(str)
    psf_radius = np.mean([_column(catalog, f"psfsize_{band}") for band in bands], axis=0) / 2
    if _has_dr9_shapes(catalog, schema):
        return _per_type(source_type, {("PSF",): psf_radius, _DR9_GALAXY_TYPES: _column(catalog, "shape_r")})
    exp_radius, dev_radius = _column(catalog, "shapeexp_r"), _column(catalog, "shapedev_r")
    fracdev = _column(catalog, "fracdev")
    composite = fracdev * dev_radius + (1 - fracdev) * exp_radius
    rules = {("PSF",): psf_radius, EXPONENTIAL_TYPES: exp_radius, ("DEV",): dev_radius, ("COMP",): composite}
    return _per_type(source_type, rules)


def sersic_index(catalog: pd.DataFrame, schema: str | None = None) -> np.ndarray:
    """Canonical ``sersic_n`` (float64) of the tractor rows ``catalog`` (see the module; ``schema`` as for
    :func:`half_light_radius`)."""
    source_type = np.asarray(catalog["type"]).astype(str)
    rules: dict[tuple[str, ...], np.ndarray | float] = {EXPONENTIAL_TYPES: 1.0, ("DEV",): 4.0}
    if _has_dr9_shapes(catalog, schema):
        rules[("SER",)] = _column(catalog, "sersic")
    return _per_type(source_type, rules)


def ellipticity(catalog: pd.DataFrame, component: str, schema: str | None = None) -> np.ndarray:
    """Canonical ``e1`` or ``e2`` (``component``; float64) of the tractor rows ``catalog`` (see the module;
    ``schema`` as for :func:`half_light_radius`)."""
    source_type = np.asarray(catalog["type"]).astype(str)
    if _has_dr9_shapes(catalog, schema):
        return _per_type(source_type, {("PSF",): 0.0, _DR9_GALAXY_TYPES: _column(catalog, f"shape_{component}")})
    rules = {
        ("PSF",): 0.0,
        EXPONENTIAL_TYPES: _column(catalog, f"shapeexp_{component}"),
        ("DEV",): _column(catalog, f"shapedev_{component}"),
    }
    return _per_type(source_type, rules)


def shape_columns(catalog: pd.DataFrame, bands: Sequence[str], schema: str | None = None) -> pd.DataFrame:
    """The canonical shape columns (:data:`CANONICAL_COLUMNS`, see the module) of the tractor rows ``catalog``,
    computed from its own columns; the PSF radius averages ``psfsize`` over ``bands``. ``schema`` None: dr9's
    formulas if the catalog has ``shape_r``, else dr5's. A missing column raises KeyError naming it."""
    columns = {
        "rhalf": half_light_radius(catalog, bands, schema),
        "sersic_n": sersic_index(catalog, schema),
        "e1": ellipticity(catalog, "e1", schema),
        "e2": ellipticity(catalog, "e2", schema),
    }
    return pd.DataFrame(columns, index=catalog.index)


def canonical_column(catalog: pd.DataFrame, name: str, bands: Sequence[str]) -> np.ndarray:
    """Canonical column ``name`` ("rhalf", "sersic_n", "e1" or "e2") of ``catalog``: its own when it has one (as
    read_tractor gives it), else computed from its columns (a table made in memory; ``rhalf``'s PSF radius over
    ``bands``)."""
    if name in catalog.columns:
        return catalog[name].to_numpy(np.float64)
    if name == "rhalf":
        return half_light_radius(catalog, bands)
    return sersic_index(catalog) if name == "sersic_n" else ellipticity(catalog, name)
