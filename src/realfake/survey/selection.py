"""Source selections: which catalog sources belong to the parameter space of interest.

A selection is a named one (:data:`SELECTIONS`: a pure function of a tractor-like catalog, one row per source,
giving a boolean mask) or an expression over the catalog's lower-case columns, evaluated with pandas
(``DataFrame.eval``, python engine): ``type == 'PSF'``, ``brick_primary & (maskbits // 2**1 % 2 == 0)``. The
named ones use the canonical shape columns (``rhalf``, ``sersic_n``: :mod:`realfake.survey.tractor`), so they
work on catalogs of any release from DR5 to DR10. Magnitudes are *dereddened*
(``flux_<b> / mw_transmission_<b>``) and use :func:`realfake.survey.legacy.nanomaggies_to_mag`,
the one magnitude definition of the project.

``elg_padded`` is obiwan's "parameter space of interest" for real galaxies
(``TractorStamps.apply_cuts``, docs/data_layout.md): the DESI ELG box padded by
0.5 mag, with a brightness window, coverage in every band, positive fluxes, a
half-light radius between 0.131" and 2.0", and no bulge-like profile: no COMP or
DEV (DR5-DR8), no DEV and no SER with a Sersic index of 2.5 or more (DR9, DR10;
docs/data_layout.md, "DR8, DR9 and DR10 catalogs", says why).

``psf_stars`` is the point sources of a magnitude window: tractor type PSF, a
dereddened r magnitude from 18 to 23 (:data:`STAR_R_MAG_WINDOW`: bright enough for
a clear detection, faint enough to stay far from saturation), coverage and positive
flux in g, r and z, primary. It picks the stars the mock injects with
``mock.model: stars``, and the reals to compare them with.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.errors import RealfakeError
from realfake.survey.legacy import nanomaggies_to_mag
from realfake.survey.tractor import canonical_column, half_light_radius

ELG_BANDS = ("g", "r", "z")
# elg_padded's cuts, each defined once: here, for elg_padded, and for selection_expression, which writes them as an
# expression over another catalog's columns (the mock's Rubin-like export). The colour box on dereddened g, r, z:
ELG_COLOUR_BOX = (
    "(g - r <= 1.15 * (r - z) + 0.6120) & (g - r <= -1.2 * (r - z) + 2.3810) & (r - z >= -0.2) & (r - z <= 2.1)"
)
ELG_MAG_WINDOW = {"g": (20.6766, 24.5), "r": (20.4659, 23.9), "z": (19.4391, 23.0)}  # lowest included, highest not
ELG_RADIUS_RANGE = (0.131, 2.0)  # arcsec, both included
STAR_R_MAG_WINDOW = (18.0, 23.0)  # psf_stars: dereddened r, lowest (included) and highest (excluded)
# A SER fit with a Sersic index at least this is nearer de Vaucouleurs (n = 4) than exponential (n = 1).
BULGE_SERSIC_INDEX = 2.5
_BAND_NAME = re.compile(r"\b([grz])\b")


def dereddened_mag(catalog: pd.DataFrame, band: str) -> np.ndarray:
    """AB magnitude of ``flux_<band> / mw_transmission_<band>`` (NaN where flux <= 0)."""
    flux = np.asarray(catalog[f"flux_{band}"], dtype=np.float64)
    transmission = np.asarray(catalog[f"mw_transmission_{band}"], dtype=np.float64)
    return nanomaggies_to_mag(flux / transmission)


def tractor_half_light_radius(catalog: pd.DataFrame, bands: Sequence[str] = ELG_BANDS) -> np.ndarray:
    """Half-light radius in arcsec as obiwan defines it for the size cut, of tractor rows of any release: the
    canonical ``rhalf`` (:mod:`realfake.survey.tractor`), computed from ``catalog``'s own columns with the PSF
    radius averaged over ``bands``."""
    return half_light_radius(catalog, bands)


def elg_padded(catalog: pd.DataFrame) -> np.ndarray:
    """obiwan's padded ELG box on dereddened tractor magnitudes (docs/data_layout.md), for DR5 to DR10 catalogs."""
    mags = {band: dereddened_mag(catalog, band) for band in ELG_BANDS}
    with np.errstate(invalid="ignore"):
        colour_box = np.asarray(pd.eval(ELG_COLOUR_BOX, local_dict=mags, engine="python"), dtype=bool)
        brightness = np.ones(len(catalog), dtype=bool)
        for band, (low, high) in ELG_MAG_WINDOW.items():
            brightness &= (mags[band] >= low) & (mags[band] < high)
        radius = canonical_column(catalog, "rhalf", ELG_BANDS)
        size = (radius >= ELG_RADIUS_RANGE[0]) & (radius <= ELG_RADIUS_RANGE[1])
    primary = np.asarray(catalog["brick_primary"]).astype(bool)
    return colour_box & brightness & size & _covered(catalog) & disk_like(catalog) & primary


def psf_stars(catalog: pd.DataFrame) -> np.ndarray:
    """Point sources (type PSF) with a dereddened r magnitude in :data:`STAR_R_MAG_WINDOW`, covered with positive
    flux in g, r and z, primary; for DR5 to DR10 catalogs."""
    r = dereddened_mag(catalog, "r")
    low, high = STAR_R_MAG_WINDOW
    with np.errstate(invalid="ignore"):
        window = (r >= low) & (r < high)
    point = np.char.strip(np.asarray(catalog["type"]).astype(str)) == "PSF"
    primary = np.asarray(catalog["brick_primary"]).astype(bool)
    return point & window & _covered(catalog) & primary


def _covered(catalog: pd.DataFrame) -> np.ndarray:
    """Whether each source has an exposure, a positive flux and a positive flux inverse variance in g, r and z."""
    coverage = np.ones(len(catalog), dtype=bool)
    for band in ELG_BANDS:
        coverage &= np.asarray(catalog[f"nobs_{band}"]) >= 1
        coverage &= np.asarray(catalog[f"flux_{band}"]) > 0
        coverage &= np.asarray(catalog[f"flux_ivar_{band}"]) > 0
    return coverage


def disk_like(catalog: pd.DataFrame) -> np.ndarray:
    """elg_padded's morphology cut: not COMP or DEV (a de Vaucouleurs bulge, whole or in part), and a SER only
    with a canonical ``sersic_n`` below :data:`BULGE_SERSIC_INDEX` (nearer exponential than de Vaucouleurs)."""
    source_type = np.asarray(catalog["type"]).astype(str)
    with np.errstate(invalid="ignore"):
        disky_sersic = canonical_column(catalog, "sersic_n", ELG_BANDS) < BULGE_SERSIC_INDEX
    return ~np.isin(source_type, ["COMP", "DEV"]) & ((source_type != "SER") | disky_sersic)


def selection_expression(selection: str, mag: Callable[[str], str], columns: dict[str, str]) -> str:
    """The named ``selection`` (elg_padded or psf_stars) as an expression over another catalog's columns, for
    :func:`select`: ``mag(band)`` is the expression of a dereddened AB magnitude (it must be NaN where the flux is
    not positive), ``columns`` names ``primary``, ``type``, ``rhalf``, ``sersic_n`` and ``flux_<b>`` of g, r, z.
    Coverage is "positive flux in g, r and z": such a catalog has no ``nobs`` or flux inverse variance. The mock's
    Rubin-like export selects its reals with it (realfake.mock.manifest), as a user would write their own."""
    positive = " & ".join(f"({columns[f'flux_{band}']} > 0)" for band in ELG_BANDS)
    kind, primary = columns["type"], columns["primary"]
    if selection == "psf_stars":
        low, high = STAR_R_MAG_WINDOW
        r = mag("r")
        return f"{primary} & ({kind} == 'PSF') & ({r} >= {low}) & ({r} < {high}) & {positive}"
    if selection != "elg_padded":
        raise RealfakeError(f"selection {selection} has no expression form; only elg_padded and psf_stars have")
    colour_box = _BAND_NAME.sub(lambda match: mag(match[1]), ELG_COLOUR_BOX)
    brightness = " & ".join(
        f"({mag(band)} >= {low}) & ({mag(band)} < {high})" for band, (low, high) in ELG_MAG_WINDOW.items()
    )
    radius = columns["rhalf"]
    size = f"({radius} >= {ELG_RADIUS_RANGE[0]}) & ({radius} <= {ELG_RADIUS_RANGE[1]})"
    morphology = (
        f"({kind} != 'COMP') & ({kind} != 'DEV') & (({kind} != 'SER') | ({columns['sersic_n']} < {BULGE_SERSIC_INDEX}))"
    )
    return f"{primary} & {colour_box} & {brightness} & {size} & {positive} & {morphology}"


def all_primary(catalog: pd.DataFrame) -> np.ndarray:
    """Every ``brick_primary`` source: no cut on the parameter space."""
    return np.asarray(catalog["brick_primary"]).astype(bool)


SELECTIONS: dict[str, Callable[[pd.DataFrame], np.ndarray]] = {
    "elg_padded": elg_padded,
    "all_primary": all_primary,
    "psf_stars": psf_stars,
}
# The bands each selection cuts on; cutouts must use all of them (without z imaging, elg_padded's
# flux_z > 0 would cut every source and leave empty files).
SELECTION_BANDS: dict[str, tuple[str, ...]] = {"elg_padded": ELG_BANDS, "all_primary": (), "psf_stars": ELG_BANDS}


def missing_selection_bands(selection: str, bands: Sequence[str]) -> list[str]:
    """The bands the named selection cuts on that are not among ``bands`` (empty when it can be applied, and for
    an expression, whose bands are not known)."""
    return [band for band in SELECTION_BANDS.get(selection, ()) if band not in bands]


def check_selection(selection: str) -> None:
    """RealfakeError unless ``selection`` is a named selection or at least parses as an expression (whether its
    columns exist is known only when a catalog is read)."""
    if selection in SELECTIONS:
        return
    try:
        ast.parse(selection.strip(), mode="eval")
    except SyntaxError as error:
        raise RealfakeError(
            f"selection {selection!r} is neither a named selection ({', '.join(sorted(SELECTIONS))}) nor an "
            f"expression over the catalog's columns: {error.msg}"
        ) from None


def select(catalog: pd.DataFrame, selection: str, path: Path | str | None = None) -> np.ndarray:
    """Boolean mask (len(catalog),) of the sources that pass ``selection``: a named one, or an expression.

    ``path`` names the catalog in errors (default: its ``attrs["path"]``). RealfakeError naming the selection and
    the file when a column it needs is missing, or an expression does not give one boolean per row.
    """
    source = path or catalog.attrs.get("path") or "the catalog"
    if selection not in SELECTIONS:
        return _evaluate(catalog, selection, source)
    if len(catalog) == 0:
        return np.zeros(0, dtype=bool)
    try:
        return np.asarray(SELECTIONS[selection](catalog), dtype=bool)
    except KeyError as error:
        raise RealfakeError(f"selection {selection} needs column {error.args[0]!r}, which {source} lacks") from None


def _evaluate(catalog: pd.DataFrame, expression: str, source: Path | str) -> np.ndarray:
    """The boolean mask of ``expression`` over the columns of ``catalog`` (read from ``source``)."""
    named = ", ".join(sorted(SELECTIONS))
    try:
        with np.errstate(invalid="ignore", divide="ignore"):  # log10 of a flux <= 0: NaN, which no cut passes
            result = catalog.eval(expression, engine="python")
    except NameError as error:  # pandas' UndefinedVariableError: a name that is no column
        raise RealfakeError(
            f"selection expression {expression!r} names a column that {source} lacks ({error}); column names are "
            f"lower-case, and the named selections are {named}"
        ) from None
    except Exception as error:  # pandas reports a bad expression with many exception types
        raise RealfakeError(
            f"selection expression {expression!r} cannot be evaluated on {source}: {type(error).__name__}: {error}"
        ) from None
    values = result.to_numpy() if isinstance(result, pd.Series) else np.asarray(result)
    if values.dtype != bool or values.shape != (len(catalog),):
        shown = f"{values.dtype} values of shape {values.shape}" if values.ndim else f"the single value {result!r}"
        raise RealfakeError(
            f"selection expression {expression!r} does not give one boolean per row of {source} "
            f"({len(catalog)} rows): it gives {shown}"
        )
    return values
