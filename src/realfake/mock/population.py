"""The mock sky: true source populations and their "measured" tractor catalog.

Truth tables (pandas DataFrames, one row per source) hold:

- ``x, y``: float64 0-indexed pixel position in the brick image (pixel centres
  at integers; rows = y, columns = x);
- ``type``: the DR5 morphological type the source really has (PSF, REX, EXP,
  DEV, COMP);
- ``flux_dered_<b>``: intrinsic (dereddened) flux in nanomaggies, in g, r, i, z (i only
  rendered for DR10's griz);
- ``sersic_n, rhalf, e1, e2``: the main light profile (rhalf in arcsec, 0 for a
  point source; e1, e2 reduced-shear components in the pixel frame, the
  ``galsim.Shear(g1=e1, g2=e2)`` convention);
- ``fracdev, rhalf_dev, e1_dev, e2_dev``: the de Vaucouleurs part of a COMP
  source (``fracdev`` = 0 for every other type).

Number counts, colours and sizes are simple empirical laws tuned to look like
DR5 at high Galactic latitude (about 17 detected sources per arcmin^2, r-band
galaxy counts rising as 10^(0.35 m), a blue star-forming and a red passive
galaxy population, a stellar locus). A real fraction of the blue galaxies falls
in the DESI ELG box (docs/data_layout.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PIXEL_SCALE = 0.262  # arcsec per pixel
GALAXY_DENSITY = 60.0  # per arcmin^2, 16 < r < 25.5
STAR_DENSITY = 1.5  # per arcmin^2, 14 < r < 25
# The star density of the population with MockSettings.model stars (a low-latitude field): enough stars in
# psf_stars for a control at the default mock size (12 bricks of 836 pixels). Galaxies are as with STAR_DENSITY.
STAR_RICH_DENSITY = 20.0  # per arcmin^2, 14 < r < 25
DETECTION_THRESHOLD = 6.0  # combined chi over the bands, as legacypipe's detection
EXTINCTION_COEFFICIENTS = {"g": 3.214, "r": 2.165, "i": 1.592, "z": 1.211}  # DR5 A_b / E(B-V); i: DR10's DECam i
# i between r and z: r - i = I_FRACTION (r - z), near what DECam colours give for galaxies and stars alike.
I_FRACTION = 0.45
REX_RADIUS = 0.45  # arcsec, the galaxy used for galdepth


@dataclass(frozen=True)
class Observing:
    """What a brick's images are like, per band (all dicts keyed by band)."""

    psf_fwhm: dict[str, float]  # arcsec
    inverse_variance: dict[str, np.ndarray]  # (H, W) float32, 1/nanomaggy^2, 0 = no coverage
    exposures: dict[str, np.ndarray]  # (H, W) int16, number of exposures
    mw_transmission: dict[str, float]
    ebv: float  # E(B-V), constant over a mock brick


def _power_law_magnitudes(rng: np.random.Generator, count: int, slope: float, low: float, high: float) -> np.ndarray:
    """Magnitudes with dN/dm proportional to 10^(slope m) on [low, high)."""
    lower, upper = 10 ** (slope * low), 10 ** (slope * high)
    return np.log10(lower + rng.random(count) * (upper - lower)) / slope


def _ellipticities(rng: np.random.Generator, count: int, sigma: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    modulus = np.minimum(np.abs(rng.normal(0.0, sigma, count)), 0.8)
    angle = rng.uniform(0, np.pi, count)
    return modulus * np.cos(2 * angle), modulus * np.sin(2 * angle)


def draw_truth(
    rng: np.random.Generator,
    width: float,
    height: float,
    x0: float = 0.0,
    y0: float = 0.0,
    star_density: float = STAR_DENSITY,
) -> pd.DataFrame:
    """Draw stars and galaxies uniformly over a ``width`` x ``height`` pixel area from (x0, y0); ``star_density``
    per arcmin^2 over 14 < r < 25 (:data:`STAR_RICH_DENSITY` for the mock's model stars)."""
    area_arcmin2 = width * height * (PIXEL_SCALE / 60) ** 2
    n_galaxies = rng.poisson(GALAXY_DENSITY * area_arcmin2)
    n_stars = rng.poisson(star_density * area_arcmin2)
    galaxies = _draw_galaxies(rng, n_galaxies)
    stars = _draw_stars(rng, n_stars)
    truth = pd.concat([galaxies, stars], ignore_index=True)
    count = len(truth)
    truth.insert(0, "y", y0 + rng.random(count) * height)
    truth.insert(0, "x", x0 + rng.random(count) * width)
    return truth


def _colours_to_fluxes(r_mag: np.ndarray, g_minus_r: np.ndarray, r_minus_z: np.ndarray) -> dict[str, np.ndarray]:
    """Dereddened fluxes in g, r, z, and in i from r and z without a random draw, so that the g, r, z
    population is the same whether the i band is rendered or not."""
    mags = {"g": r_mag + g_minus_r, "r": r_mag, "z": r_mag - r_minus_z, "i": r_mag - I_FRACTION * r_minus_z}
    return {f"flux_dered_{band}": 10 ** ((22.5 - mag) / 2.5) for band, mag in mags.items()}


def _draw_galaxies(rng: np.random.Generator, count: int) -> pd.DataFrame:
    r_mag = _power_law_magnitudes(rng, count, 0.35, 16.0, 25.5)
    blue = rng.random(count) < 0.55 + 0.04 * np.clip(r_mag - 20, 0, 5)
    r_minus_z = np.where(
        blue,
        rng.normal(0.75 + 0.08 * (r_mag - 22), 0.28),
        rng.normal(1.35, 0.18, count),
    )
    r_minus_z = np.clip(r_minus_z, -0.3, 2.2)
    g_minus_r = np.where(blue, 0.2 + 0.35 * r_minus_z + rng.normal(0, 0.12, count), rng.normal(1.45, 0.15, count))
    type_draw = rng.random(count)
    source_type = np.where(
        blue,
        np.where(type_draw < 0.45, "REX", "EXP"),
        np.where(type_draw < 0.5, "DEV", np.where(type_draw < 0.75, "EXP", "COMP")),
    )
    median_radius = np.where(blue, 0.5, 0.7) * 10 ** (-0.12 * (r_mag - 22))
    rhalf = np.clip(median_radius * 10 ** rng.normal(0, 0.2, count), 0.08, 4.0)
    e1, e2 = _ellipticities(rng, count)
    round_profile = source_type == "REX"
    e1[round_profile] = 0.0
    e2[round_profile] = 0.0
    is_comp = source_type == "COMP"
    e1_dev, e2_dev = _ellipticities(rng, count)
    galaxies = pd.DataFrame(
        {
            "type": source_type,
            **_colours_to_fluxes(r_mag, g_minus_r, r_minus_z),
            "sersic_n": np.where(source_type == "DEV", 4.0, 1.0),
            "rhalf": rhalf,
            "e1": e1,
            "e2": e2,
            "fracdev": np.where(is_comp, rng.uniform(0.2, 0.8, count), 0.0),
            "rhalf_dev": np.where(is_comp, 0.6 * rhalf, 0.0),
            "e1_dev": np.where(is_comp, e1_dev, 0.0),
            "e2_dev": np.where(is_comp, e2_dev, 0.0),
        }
    )
    return galaxies


def _draw_stars(rng: np.random.Generator, count: int) -> pd.DataFrame:
    r_mag = _power_law_magnitudes(rng, count, 0.12, 14.0, 25.0)
    g_minus_r = np.clip(rng.normal(0.75, 0.35, count), 0.15, 1.7)
    r_minus_z = 0.05 + 0.55 * g_minus_r + 1.2 * np.maximum(0, g_minus_r - 1.2) + rng.normal(0, 0.04, count)
    zeros = np.zeros(count)
    return pd.DataFrame(
        {
            "type": np.full(count, "PSF"),
            **_colours_to_fluxes(r_mag, g_minus_r, r_minus_z),
            "sersic_n": zeros,
            "rhalf": zeros,
            "e1": zeros,
            "e2": zeros,
            "fracdev": zeros,
            "rhalf_dev": zeros,
            "e1_dev": zeros,
            "e2_dev": zeros,
        }
    )


def profile_norm_squared(psf_fwhm_arcsec: float, rhalf_arcsec: np.ndarray) -> np.ndarray:
    """sum(profile^2) over pixels of a unit-flux source (Gaussian approximation), 1/pixel.

    The inverse variance of a flux measured with that profile is
    ``inverse_variance_per_pixel * norm_squared``: for a point source this is
    DR5's ``psfdepth``.
    """
    sigma_psf = psf_fwhm_arcsec / 2.3548 / PIXEL_SCALE
    sigma_galaxy = np.asarray(rhalf_arcsec) / 1.1774 / PIXEL_SCALE
    return 1.0 / (4 * np.pi * (sigma_psf**2 + sigma_galaxy**2))


def measure(
    rng: np.random.Generator, truth: pd.DataFrame, observing: Observing, bands: tuple[str, ...]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Measured catalog values for every truth row, and which rows legacypipe would detect.

    Returns a DataFrame with DR5 tractor column names (``flux_<b>`` observed,
    ``flux_ivar_<b>``, ``nobs_<b>``, shapes, ...), one row per truth row, and a
    boolean detection mask. Fluxes and shapes are truth plus Gaussian noise
    with the inverse variance of a fit of that profile at the source's
    position; positions are the true ones (the mock models no astrometric
    error).
    """
    count = len(truth)
    height, width = next(iter(observing.inverse_variance.values())).shape
    column = np.clip(np.rint(truth["x"].to_numpy()).astype(int), 0, width - 1)
    row = np.clip(np.rint(truth["y"].to_numpy()).astype(int), 0, height - 1)
    inside = (truth["x"] > -0.5) & (truth["x"] < width - 0.5) & (truth["y"] > -0.5) & (truth["y"] < height - 0.5)
    inside = inside.to_numpy()
    is_point = truth["type"].to_numpy() == "PSF"
    effective_radius = np.where(
        truth["type"] == "COMP",
        (1 - truth["fracdev"]) * truth["rhalf"] + truth["fracdev"] * truth["rhalf_dev"],
        truth["rhalf"],
    )
    measured: dict[str, np.ndarray] = {}
    chi_squared = np.zeros(count)
    for band in bands:
        pixel_ivar = np.where(inside, observing.inverse_variance[band][row, column], 0.0)
        exposures = np.where(inside, observing.exposures[band][row, column], 0)
        fwhm = observing.psf_fwhm[band]
        flux_ivar = pixel_ivar * profile_norm_squared(fwhm, effective_radius)
        true_flux = truth[f"flux_dered_{band}"].to_numpy() * observing.mw_transmission[band]
        with np.errstate(divide="ignore"):
            sigma = np.where(flux_ivar > 0, 1 / np.sqrt(flux_ivar), 0.0)
        flux = np.where(flux_ivar > 0, true_flux + sigma * rng.standard_normal(count), 0.0)
        chi_squared += np.where(flux > 0, flux**2 * flux_ivar, 0.0)
        covered = exposures > 0
        measured[f"flux_{band}"] = flux.astype(np.float32)
        measured[f"flux_ivar_{band}"] = flux_ivar.astype(np.float32)
        measured[f"mw_transmission_{band}"] = np.full(count, observing.mw_transmission[band], dtype=np.float32)
        measured[f"nobs_{band}"] = exposures.astype(np.int16)
        measured[f"psfsize_{band}"] = np.where(covered, fwhm, 0.0).astype(np.float32)
        measured[f"psfdepth_{band}"] = (pixel_ivar * profile_norm_squared(fwhm, 0.0)).astype(np.float32)
        measured[f"galdepth_{band}"] = (pixel_ivar * profile_norm_squared(fwhm, REX_RADIUS)).astype(np.float32)
        measured[f"anymask_{band}"] = np.zeros(count, dtype=np.int16)
        measured[f"allmask_{band}"] = np.zeros(count, dtype=np.int16)
        measured[f"fracflux_{band}"] = np.zeros(count, dtype=np.float32)
        measured[f"fracmasked_{band}"] = np.zeros(count, dtype=np.float32)
        measured[f"fracin_{band}"] = np.where(covered, 1.0, 0.0).astype(np.float32)
        measured[f"rchisq_{band}"] = np.where(covered, 1.0 + 0.1 * rng.random(count), 0.0).astype(np.float32)
    signal_to_noise = np.sqrt(chi_squared)
    detected = inside & (signal_to_noise >= DETECTION_THRESHOLD)
    shape_noise = 0.5 / np.maximum(signal_to_noise, 1.0)
    measured.update(_measured_shapes(rng, truth, shape_noise, is_point))
    return pd.DataFrame(measured), detected


def _measured_shapes(
    rng: np.random.Generator, truth: pd.DataFrame, shape_noise: np.ndarray, is_point: np.ndarray
) -> dict[str, np.ndarray]:
    count = len(truth)
    source_type = truth["type"].to_numpy()

    def noisy_radius(radius: np.ndarray) -> np.ndarray:
        return radius * np.exp(rng.normal(0.0, 0.05 + 2 * shape_noise, count))

    def noisy_ellipticity(value: np.ndarray) -> np.ndarray:
        return np.clip(value + rng.normal(0.0, shape_noise, count), -0.9, 0.9)

    has_exp = np.isin(source_type, ["REX", "EXP", "COMP"])
    has_dev = np.isin(source_type, ["DEV", "COMP"])
    is_rex = source_type == "REX"
    is_dev = source_type == "DEV"
    exp_r = np.where(has_exp, noisy_radius(truth["rhalf"].to_numpy()), 0.0)
    exp_e1 = np.where(has_exp & ~is_rex, noisy_ellipticity(truth["e1"].to_numpy()), 0.0)
    exp_e2 = np.where(has_exp & ~is_rex, noisy_ellipticity(truth["e2"].to_numpy()), 0.0)
    dev_radius_truth = np.where(is_dev, truth["rhalf"], truth["rhalf_dev"])
    dev_e1_truth = np.where(is_dev, truth["e1"], truth["e1_dev"])
    dev_e2_truth = np.where(is_dev, truth["e2"], truth["e2_dev"])
    dev_r = np.where(has_dev, noisy_radius(dev_radius_truth), 0.0)
    dev_e1 = np.where(has_dev, noisy_ellipticity(dev_e1_truth), 0.0)
    dev_e2 = np.where(has_dev, noisy_ellipticity(dev_e2_truth), 0.0)
    fracdev = np.where(
        source_type == "COMP",
        np.clip(truth["fracdev"] + rng.normal(0, 0.05, count), 0, 1),
        np.where(is_dev, 1.0, 0.0),
    )
    shape_ivar = np.where(is_point, 0.0, 1.0 / shape_noise**2)
    return {
        "fracdev": fracdev.astype(np.float32),
        "fracdev_ivar": np.where(source_type == "COMP", 400.0, 0.0).astype(np.float32),
        "shapeexp_r": exp_r.astype(np.float32),
        "shapeexp_r_ivar": np.where(has_exp, shape_ivar, 0.0).astype(np.float32),
        "shapeexp_e1": exp_e1.astype(np.float32),
        "shapeexp_e1_ivar": np.where(has_exp & ~is_rex, shape_ivar, 0.0).astype(np.float32),
        "shapeexp_e2": exp_e2.astype(np.float32),
        "shapeexp_e2_ivar": np.where(has_exp & ~is_rex, shape_ivar, 0.0).astype(np.float32),
        "shapedev_r": dev_r.astype(np.float32),
        "shapedev_r_ivar": np.where(has_dev, shape_ivar, 0.0).astype(np.float32),
        "shapedev_e1": dev_e1.astype(np.float32),
        "shapedev_e1_ivar": np.where(has_dev, shape_ivar, 0.0).astype(np.float32),
        "shapedev_e2": dev_e2.astype(np.float32),
        "shapedev_e2_ivar": np.where(has_dev, shape_ivar, 0.0).astype(np.float32),
        "type": source_type,
    }
