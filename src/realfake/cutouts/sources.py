"""Source tables: real (tractor) and fake (obiwan simcat) sources described by the same columns.

The one magnitude definition (:func:`realfake.survey.legacy.nanomaggies_to_mag` of
the dereddened flux) is applied here for both kinds; each fake gets the tractor
fit legacypipe found for it in its rs dir (the ``measured_*`` columns), as a
real source's are its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from realfake.conventions import bands_in
from realfake.survey import legacy
from realfake.survey.tractor import CANONICAL_COLUMNS, canonical_column

# A fake's re-fit in its rs dir's tractor catalog is the source nearest to it within this many pixels.
FIT_MATCH_RADIUS = 1.0


def source_table(
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
        table[f"mag_dered_{band}"] = legacy.nanomaggies_to_mag(
            table[f"flux_{band}"].to_numpy() / table[f"mw_transmission_{band}"].to_numpy()
        )
    table["type"] = np.asarray(source_type, dtype=object)
    table["size"] = np.asarray(size, dtype=np.float64)
    table["sersic_n"] = np.asarray(sersic_n, dtype=np.float64)
    table["e1"] = np.asarray(e1, dtype=np.float64)
    table["e2"] = np.asarray(e2, dtype=np.float64)
    return table


def real_source_table(tractor: pd.DataFrame, brick_name: str, bands: Sequence[str]) -> pd.DataFrame:
    """Source table of tractor rows (as :func:`realfake.survey.legacy.read_tractor` returns them, of any release):
    ``size``, ``sersic_n``, ``e1``, ``e2`` are its canonical shape columns (:mod:`realfake.survey.tractor`;
    computed here, a PSF's radius over ``bands``, for rows that lack them)."""
    table = source_table(
        brick_name,
        "",
        tractor.assign(id=tractor["objid"]),
        bands,
        tractor["type"].to_numpy().astype(str),
        *(canonical_column(tractor, name, bands) for name in CANONICAL_COLUMNS),
    )
    return with_fit(table, table, np.ones(len(table), dtype=bool), bands)


def fake_type(sersic_n: np.ndarray, rhalf: np.ndarray) -> np.ndarray:
    """Type of a fake from its true profile: PSF (rhalf <= 0), EXP (n = 1), DEV (n = 4), else SER."""
    sersic_n, rhalf = np.asarray(sersic_n, dtype=np.float64), np.asarray(rhalf, dtype=np.float64)
    return np.where(rhalf <= 0, "PSF", np.where(sersic_n == 1, "EXP", np.where(sersic_n == 4, "DEV", "SER")))


def fake_source_table(
    simcat: pd.DataFrame, brick_name: str, rsdir: str, bands: Sequence[str], tractor: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Source table of simcat rows (as :func:`realfake.survey.obiwan.read_simcat` returns them).

    ``tractor``, the rs dir's tractor catalog (legacypipe re-run on the images
    with the fakes), gives each fake its fit: the tractor source nearest to the
    fake's position within FIT_MATCH_RADIUS pixels, described exactly as a real
    source is (:func:`real_source_table`). Without it no fake is measured.
    """
    table = source_table(
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
        return with_fit(table, table, np.zeros(len(table), dtype=bool), bands)
    from scipy.spatial import cKDTree

    distance, nearest = cKDTree(tractor[["bx", "by"]].to_numpy(np.float64)).query(
        simcat[["x", "y"]].to_numpy(np.float64), distance_upper_bound=FIT_MATCH_RADIUS
    )
    matched = np.isfinite(distance)
    fits = real_source_table(tractor.iloc[np.where(matched, nearest, 0)], brick_name, bands)
    return with_fit(table, fits.set_axis(table.index), matched, bands)


def with_fit(table: pd.DataFrame, fits: pd.DataFrame, measured: np.ndarray, bands: Sequence[str]) -> pd.DataFrame:
    """``table`` with the measured_* columns taken from the rows of ``fits`` where ``measured``."""
    table = table.copy()
    table["measured"] = measured
    for band in bands:
        table[f"measured_mag_dered_{band}"] = np.where(measured, fits[f"mag_dered_{band}"].to_numpy(np.float64), np.nan)
    table["measured_type"] = np.where(measured, fits["type"].to_numpy(dtype=object), "").astype(object)
    table["measured_size"] = np.where(measured, fits["size"].to_numpy(np.float64), np.nan)
    table["detected"] = measured
    return table


def fake_selection_view(simcat: pd.DataFrame) -> pd.DataFrame:
    """Simcat rows (as :func:`realfake.survey.obiwan.read_simcat` returns them) dressed as a tractor catalog,
    so that a selection (named or expression) can cut fakes.

    True values stand in for the measured ones: fluxes and transmissions of all
    simcat bands, with their ``flux_dered_<b>`` and ``mag_dered_<b>``; every fake
    primary, observed once, with positive flux inverse variance (coverage is judged
    from the pixels instead); ``type`` from the true profile (:func:`fake_type`);
    the canonical shape columns (:mod:`realfake.survey.tractor`) from the truth:
    ``rhalf`` the true half-light radius (for every type), ``sersic_n``, ``e1``,
    ``e2``; and ``psfsize = 2 rhalf``.
    """
    size = simcat["rhalf"].to_numpy(np.float64)
    view = pd.DataFrame(
        {
            "brick_primary": np.ones(len(simcat), dtype=bool),
            "type": fake_type(simcat["sersic_n"], size),
            "rhalf": size,
            "sersic_n": simcat["sersic_n"].to_numpy(np.float64),
            "e1": simcat["e1"].to_numpy(np.float64),
            "e2": simcat["e2"].to_numpy(np.float64),
        }
    )
    bands = bands_in(simcat.columns)
    for band in bands:
        view[f"flux_{band}"] = simcat[f"flux_{band}"].to_numpy(np.float64)
        view[f"mw_transmission_{band}"] = simcat[f"mw_transmission_{band}"].to_numpy(np.float64)
        view[f"nobs_{band}"] = 1
        view[f"flux_ivar_{band}"] = 1.0
        view[f"psfsize_{band}"] = 2 * size
    legacy.add_dereddened(view, bands)
    view.attrs["path"] = simcat.attrs.get("path", "")
    return view
