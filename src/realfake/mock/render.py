"""Rendering the mock images with GalSim: coverage, PSF, sources and noise.

Images are float64 arrays (H, W) in nanomaggies per pixel, rows = y and
columns = x, 0-indexed, pixel centres at integer coordinates. Real sources and
injected fakes go through the same :func:`render_sources`, so a fake with the
parameters of a real galaxy renders to exactly the same pixels.
"""

from __future__ import annotations

import galsim
import numpy as np
import pandas as pd

from realfake.mock.population import PIXEL_SCALE

MOFFAT_BETA = 3.5
# Noise of one exposure per pixel (nanomaggies); a coadd of about 2.5
# exposures reaches DR5's typical g ~0.004, r ~0.008, z ~0.02.
SINGLE_EXPOSURE_SIGMA = {"g": 0.0065, "r": 0.012, "i": 0.018, "z": 0.030}
# Sky brightness per pixel (nanomaggies): sets the photon-noise gain, so
# that bright sources carry Poisson noise on top of the sky noise.
SKY_PER_PIXEL = {"g": 0.11, "r": 0.27, "i": 0.6, "z": 1.3}
BASE_PSF_FWHM = {"g": 1.40, "r": 1.28, "i": 1.22, "z": 1.18}  # arcsec
EXPOSURES_PER_BAND = 4


def psf_fwhm_for_brick(rng: np.random.Generator, bands: tuple[str, ...]) -> dict[str, float]:
    """Per-band PSF FWHM in arcsec (1.0-1.5"), seeing shared across bands within a brick."""
    seeing = rng.uniform(0.9, 1.07)
    return {band: float(np.clip(BASE_PSF_FWHM[band] * seeing, 1.0, 1.5)) for band in bands}


def coverage(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Exposure count and relative depth of one band over a ``size`` x ``size`` brick.

    Four CCD-like footprints, each covering 60-95% of the image with its own
    transparency and a gentle gradient and a pair of chip gaps, so inverse
    variance varies across the image. One corner is left uncovered (as at the
    edge of a survey footprint), so every brick has a zero-coverage region.

    Returns (exposures int16 (H, W), depth float64 (H, W)) where depth is the
    sum of the exposures' relative inverse variances.
    """
    exposures = np.zeros((size, size), dtype=np.int16)
    depth = np.zeros((size, size))
    ramp = np.linspace(-0.5, 0.5, size)
    for _ in range(EXPOSURES_PER_BAND):
        span_x, span_y = (rng.uniform(0.6, 0.95, 2) * size).astype(int)
        start_x = rng.integers(-size // 10, size - span_x + size // 10)
        start_y = rng.integers(-size // 10, size - span_y + size // 10)
        footprint = np.zeros((size, size), dtype=bool)
        footprint[max(start_y, 0) : start_y + span_y, max(start_x, 0) : start_x + span_x] = True
        gap = max(size // 200, 2)
        gap_x = rng.integers(0, size - gap)
        gap_y = rng.integers(0, size - gap)
        footprint[:, gap_x : gap_x + gap] = False
        footprint[gap_y : gap_y + gap, :] = False
        transparency = rng.uniform(0.6, 1.2)
        slope_x, slope_y = rng.uniform(-0.3, 0.3, 2)
        weight = transparency * (1 + slope_x * ramp[np.newaxis, :] + slope_y * ramp[:, np.newaxis])
        exposures += footprint
        depth += footprint * weight
    corner = max(size // 12, 8)
    corner_rows = slice(0, corner) if rng.random() < 0.5 else slice(size - corner, size)
    corner_columns = slice(0, corner) if rng.random() < 0.5 else slice(size - corner, size)
    exposures[corner_rows, corner_columns] = 0
    depth[corner_rows, corner_columns] = 0.0
    return exposures, depth


def _stamp_half_size(flux: float, rhalf_pixels: float, sersic_n: float, fwhm_pixels: float) -> int:
    """Half-width of the drawing stamp: wide enough for the wings of bright sources."""
    brightness = 1 + 0.6 * np.log10(max(flux, 0.1) / 0.1)
    extent = max(4 * fwhm_pixels, (4 if sersic_n < 2 else 10) * rhalf_pixels) * brightness
    return int(np.clip(np.ceil(extent), 8, 96))


def _galaxy(sersic_n: float, rhalf: float, e1: float, e2: float, flux: float) -> galsim.GSObject:
    profile = galsim.Sersic(n=sersic_n, half_light_radius=rhalf, flux=flux)
    if e1 != 0 or e2 != 0:
        profile = profile.shear(g1=e1, g2=e2)
    return profile


def source_profile(source: pd.Series, flux: float, psf: galsim.GSObject | None) -> tuple[galsim.GSObject, str]:
    """The GalSim profile of one source and the drawing method to use.

    ``psf=None`` draws the source unconvolved (the ``psf`` mismatch): only
    pixel-integrated, by FFT for exponential profiles and by real-space
    integration where a de Vaucouleurs cusp is involved.
    """
    if source["rhalf"] <= 0:
        intrinsic = galsim.DeltaFunction(flux=flux)
    elif source["fracdev"] > 0:
        intrinsic = galsim.Add(
            _galaxy(source["sersic_n"], source["rhalf"], source["e1"], source["e2"], (1 - source["fracdev"]) * flux),
            _galaxy(4.0, source["rhalf_dev"], source["e1_dev"], source["e2_dev"], source["fracdev"] * flux),
        )
    else:
        intrinsic = _galaxy(source["sersic_n"], source["rhalf"], source["e1"], source["e2"], flux)
    if psf is not None:
        return galsim.Convolve(intrinsic, psf), "auto"
    if source["rhalf"] <= 0:
        return galsim.Pixel(PIXEL_SCALE, flux=flux), "no_pixel"
    if source["sersic_n"] < 2 and source["fracdev"] <= 0:
        # An unconvolved exponential is smooth in k-space: an FFT with the pixel is
        # exact to ~0.3% of the peak and ~15x faster than real-space integration.
        return intrinsic, "fft"
    # A de Vaucouleurs cusp would need an FFT of ~10^4 pixels a side: integrate in real space.
    return intrinsic, "real_space"


def render_sources(
    shape: tuple[int, int],
    sources: pd.DataFrame,
    fluxes: np.ndarray,
    psf_fwhm: float,
    psf_scale: float = 1.0,
) -> np.ndarray:
    """Sum of the sources' pixel-integrated profiles, float64 (H, W), nanomaggies per pixel.

    ``sources`` holds truth columns (``x, y`` 0-indexed pixel; ``sersic_n,
    rhalf, e1, e2, fracdev, rhalf_dev, e1_dev, e2_dev``); ``fluxes`` the total
    observed flux of each in nanomaggies. They are convolved with the Moffat
    PSF of FWHM ``psf_fwhm * psf_scale`` arcsec (``psf_scale`` 0: unconvolved,
    the ``psf`` mismatch at its standard strength). Each source is drawn on a stamp
    centred on its nearest pixel with the sub-pixel offset, then added where
    the stamp overlaps the image (sources just outside the image still spill
    light into it).
    """
    height, width = shape
    model = np.zeros(shape)
    psf = galsim.Moffat(beta=MOFFAT_BETA, fwhm=psf_fwhm * psf_scale) if psf_scale > 0 else None
    fwhm_pixels = psf_fwhm * max(psf_scale, 1.0) / PIXEL_SCALE
    for (_, source), flux in zip(sources.iterrows(), fluxes, strict=True):
        if flux <= 0:
            continue
        column, row = int(np.rint(source["x"])), int(np.rint(source["y"]))
        half = _stamp_half_size(
            flux, max(source["rhalf"], source["rhalf_dev"]) / PIXEL_SCALE, source["sersic_n"], fwhm_pixels
        )
        if column + half < 0 or row + half < 0 or column - half >= width or row - half >= height:
            continue
        profile, method = source_profile(source, flux, psf)
        stamp = profile.drawImage(
            nx=2 * half + 1,
            ny=2 * half + 1,
            scale=PIXEL_SCALE,
            offset=(source["x"] - column, source["y"] - row),
            method=method,
        ).array
        top, left = row - half, column - half
        image_rows = slice(max(top, 0), min(top + stamp.shape[0], height))
        image_columns = slice(max(left, 0), min(left + stamp.shape[1], width))
        stamp_rows = slice(image_rows.start - top, image_rows.stop - top)
        stamp_columns = slice(image_columns.start - left, image_columns.stop - left)
        model[image_rows, image_columns] += stamp[stamp_rows, stamp_columns]
    return model


def photon_noise(rng: np.random.Generator, model: np.ndarray, inverse_variance: np.ndarray, band: str) -> np.ndarray:
    """Poisson noise of the sources' own photons, float64 (H, W), nanomaggies.

    The coadd's gain (electrons per nanomaggy) follows from the sky: the sky
    variance ``1/ivar`` equals ``sky / gain``, so ``gain = sky * ivar`` and
    deeper pixels count more photons. This is obiwan's ``add_sim_noise``
    applied to a coadd; zero where there is no coverage.
    """
    gain = SKY_PER_PIXEL[band] * inverse_variance
    expected = np.clip(model, 0, None) * gain
    counts = rng.poisson(expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        noise = np.where(gain > 0, (counts - expected) / gain, 0.0)
    return noise


def sky_noise(rng: np.random.Generator, inverse_variance: np.ndarray) -> np.ndarray:
    """Gaussian sky noise with variance 1/ivar, zero where ivar = 0."""
    with np.errstate(divide="ignore"):
        sigma = np.where(inverse_variance > 0, 1 / np.sqrt(inverse_variance), 0.0)
    return sigma * rng.standard_normal(inverse_variance.shape)
