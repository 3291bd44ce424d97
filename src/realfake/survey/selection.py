"""Named source selections: which catalog sources belong to the parameter space of interest.

A selection is a pure function of a tractor-like catalog (DR5 column names, one
row per source) that returns a boolean mask. Magnitudes are *dereddened*
(``flux_<b> / mw_transmission_<b>``) and use :func:`realfake.survey.legacy.nanomaggies_to_mag`,
the one magnitude definition of the project.

``elg_padded`` is obiwan's "parameter space of interest" for real galaxies
(``TractorStamps.apply_cuts``, docs/data_layout.md): the DESI ELG box padded by
0.5 mag, with a brightness window, coverage in every band, positive fluxes, no
COMP/DEV types, and a half-light radius between 0.131" and 2.0".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from realfake.errors import RealfakeError
from realfake.survey.legacy import nanomaggies_to_mag

ELG_BANDS = ("g", "r", "z")


def dereddened_mag(catalog: pd.DataFrame, band: str) -> np.ndarray:
    """AB magnitude of ``flux_<band> / mw_transmission_<band>`` (NaN where flux <= 0)."""
    flux = np.asarray(catalog[f"flux_{band}"], dtype=np.float64)
    transmission = np.asarray(catalog[f"mw_transmission_{band}"], dtype=np.float64)
    return nanomaggies_to_mag(flux / transmission)


def tractor_half_light_radius(catalog: pd.DataFrame, bands: Sequence[str] = ELG_BANDS) -> np.ndarray:
    """Half-light radius in arcsec as obiwan defines it for the size cut.

    PSF: mean ``psfsize`` over the bands divided by 2; REX and EXP:
    ``shapeexp_r``; DEV: ``shapedev_r``; COMP: the flux-weighted mean of the
    two (``fracdev``).
    """
    source_type = np.asarray(catalog["type"]).astype(str)
    psf_radius = np.mean([np.asarray(catalog[f"psfsize_{band}"], dtype=np.float64) for band in bands], axis=0) / 2
    exp_radius = np.asarray(catalog["shapeexp_r"], dtype=np.float64)
    dev_radius = np.asarray(catalog["shapedev_r"], dtype=np.float64)
    fracdev = np.asarray(catalog["fracdev"], dtype=np.float64)
    radius = np.full(len(catalog), np.nan)
    radius[source_type == "PSF"] = psf_radius[source_type == "PSF"]
    is_exp = np.isin(source_type, ["REX", "EXP", "SIMP"])
    radius[is_exp] = exp_radius[is_exp]
    radius[source_type == "DEV"] = dev_radius[source_type == "DEV"]
    is_comp = source_type == "COMP"
    radius[is_comp] = (fracdev * dev_radius + (1 - fracdev) * exp_radius)[is_comp]
    return radius


def elg_padded(catalog: pd.DataFrame) -> np.ndarray:
    """obiwan's padded ELG box on dereddened tractor magnitudes (docs/data_layout.md)."""
    g, r, z = (dereddened_mag(catalog, band) for band in ELG_BANDS)
    with np.errstate(invalid="ignore"):
        colour_box = (
            (g - r <= 1.15 * (r - z) + 0.6120) & (g - r <= -1.2 * (r - z) + 2.3810) & (r - z >= -0.2) & (r - z <= 2.1)
        )
        brightness = (g < 24.5) & (r < 23.9) & (z < 23.0) & (g >= 20.6766) & (r >= 20.4659) & (z >= 19.4391)
        radius = tractor_half_light_radius(catalog)
        size = (radius >= 0.131) & (radius <= 2.0)
    coverage = np.ones(len(catalog), dtype=bool)
    for band in ELG_BANDS:
        coverage &= np.asarray(catalog[f"nobs_{band}"]) >= 1
        coverage &= np.asarray(catalog[f"flux_{band}"]) > 0
        coverage &= np.asarray(catalog[f"flux_ivar_{band}"]) > 0
    source_type = np.asarray(catalog["type"]).astype(str)
    morphology = ~np.isin(source_type, ["COMP", "DEV"])
    primary = np.asarray(catalog["brick_primary"]).astype(bool)
    return colour_box & brightness & size & coverage & morphology & primary


def all_primary(catalog: pd.DataFrame) -> np.ndarray:
    """Every ``brick_primary`` source: no cut on the parameter space."""
    return np.asarray(catalog["brick_primary"]).astype(bool)


SELECTIONS: dict[str, Callable[[pd.DataFrame], np.ndarray]] = {
    "elg_padded": elg_padded,
    "all_primary": all_primary,
}
# The bands each selection cuts on; cutouts must use all of them (without z imaging, elg_padded's
# flux_z > 0 would cut every source and leave empty files).
SELECTION_BANDS: dict[str, tuple[str, ...]] = {"elg_padded": ELG_BANDS, "all_primary": ()}


def missing_selection_bands(name: str, bands: Sequence[str]) -> list[str]:
    """The bands the named selection cuts on that are not among ``bands`` (empty when it can be applied)."""
    return [band for band in SELECTION_BANDS.get(name, ()) if band not in bands]


def select(catalog: pd.DataFrame, name: str) -> np.ndarray:
    """Boolean mask (len(catalog),) of the sources that pass the named selection."""
    try:
        selection = SELECTIONS[name]
    except KeyError:
        raise RealfakeError(f"unknown selection {name!r}; choose one of {', '.join(sorted(SELECTIONS))}") from None
    if len(catalog) == 0:
        return np.zeros(0, dtype=bool)
    return selection(catalog)
