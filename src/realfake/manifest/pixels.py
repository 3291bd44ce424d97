"""The pixels of one side of a manifest tile (its real side or one fake run) as a
:class:`realfake.survey.legacy.Coadd`: image in nanomaggies, inverse variance in 1/nanomaggy^2.

- image: ``flux * flux_factor`` (``flux_factor = 10**(-0.4 (zeropoint - 22.5))``, :class:`Manifest`);
- weight ``invvar``: ``weight / flux_factor**2``; ``variance``: ``1 / (variance * flux_factor**2)``, 0 where the
  variance is not positive or not finite;
- inverse variance 0 where a mask has one of the no-data bits (``mask_planes`` by name through the mask HDU's
  ``MP_<NAME>`` cards, as afw writes them, or ``mask_bits``), and where the image is not finite (image 0 there).

Each band's weight is checked against its image: a negative weight is refused, and so is a band whose robust
image noise (1.4826 x the median absolute deviation of the covered pixels) is more than
:data:`NOISE_RATIO_LIMIT` times, or less than its inverse, the median ``1 / sqrt(inverse variance)``. A variance
read as an inverse variance (or the reverse) makes that ratio sigma^2 (or 1 / sigma^2) in the file's unit: in nJy
or counts sigma is far from 1, and the mix-up is caught; near sigma = 1 it cannot be seen this way.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS

from realfake.errors import RealfakeError
from realfake.manifest.load import Manifest, side_name, where
from realfake.survey.legacy import Coadd, same_wcs

# Image noise over the weight's noise outside [1 / limit, limit]: the weight does not describe this image.
# Coadds' resampling correlates the noise, which puts the ratio of a right weight near 0.5 to 1.
NOISE_RATIO_LIMIT = 10.0
NOISE_SAMPLE = 1_000_000  # pixels the noise ratio is computed from, at most (evenly spaced)


def read_plane(path: str, hdu: int | str, message: str) -> fits.ImageHDU:
    """The HDU ``hdu`` (index or EXTNAME) of a FITS file, its data read; RealfakeError with ``message`` (the
    manifest's "where" prefix and key) when the file or the HDU is missing or holds no 2-d image."""
    if not Path(path).is_file():
        raise RealfakeError(f"{message}: file {path} not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with fits.open(path, memmap=False) as hdus:
                try:
                    found = hdus[hdu]
                except (KeyError, IndexError):
                    raise RealfakeError(f"{message}: {path} has no HDU {hdu!r}") from None
                data, header = found.data, found.header.copy()
                if data is not None:
                    data = np.array(data)
    except RealfakeError:
        raise
    except Exception as error:  # astropy reports corrupt files with many exception types
        raise RealfakeError(f"{message}: cannot read {path}: {type(error).__name__}: {error}") from None
    if data is None or data.ndim != 2:
        raise RealfakeError(f"{message}: HDU {hdu!r} of {path} holds no 2-d image")
    return fits.ImageHDU(data, header)


def _wcs(plane: fits.ImageHDU, message: str) -> WCS:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            wcs = WCS(plane.header).celestial
    except Exception as error:
        raise RealfakeError(f"{message}: no WCS: {error}") from None
    if wcs.naxis != 2:
        raise RealfakeError(f"{message}: the image HDU has no celestial WCS")
    return wcs


def _no_data_bits(side: dict, mask: fits.ImageHDU, message: str) -> int:
    bits = sum(side.get("mask_bits", []))
    for plane in side.get("mask_planes", []):
        card = f"MP_{plane}"
        if card not in mask.header:
            raise RealfakeError(f"{message}: mask_planes names {plane}, but the mask HDU has no {card} card")
        bits |= 1 << int(mask.header[card])
    return bits


def check_weight(image: np.ndarray, inverse_variance: np.ndarray, message: str) -> float:
    """The ratio of the image's robust noise to the median 1/sqrt(inverse variance) over covered pixels
    (inverse variance > 0); RealfakeError (``message``: where) outside [1/NOISE_RATIO_LIMIT, NOISE_RATIO_LIMIT].
    NaN when fewer than 100 pixels are covered (nothing to judge)."""
    step = max(1, image.size // NOISE_SAMPLE)  # an even sample first: a 10k x 10k tile is not copied whole
    values, weights = image.ravel()[::step], inverse_variance.ravel()[::step]
    covered = weights > 0
    values, weights = values[covered], weights[covered]
    if values.size < 100:
        return float("nan")
    noise = 1.4826 * np.median(np.abs(values - np.median(values)))
    ratio = float(noise / np.median(1 / np.sqrt(weights)))
    if not 1 / NOISE_RATIO_LIMIT <= ratio <= NOISE_RATIO_LIMIT:
        raise RealfakeError(
            f"{message}: the image noise is {ratio:.3g} times the noise the weight gives (1/sqrt(inverse variance)): "
            f"is weight_kind (invvar or variance) right, and are image and weight in the same unit?"
        )
    return ratio


def _band_planes(
    manifest: Manifest, tile: str, side: dict, band: str
) -> tuple[np.ndarray, np.ndarray, fits.ImageHDU, list[str]]:
    """Image (nanomaggies) and inverse variance (1/nanomaggy^2) of one band, float32, the image HDU, files."""
    prefix = where(manifest.path, tile, side_name(side), band).rstrip(": ")
    image_path, image_hdu = side["image"][band]
    weight_path, weight_hdu = side["weight"][band]
    image_plane = read_plane(image_path, image_hdu, f"{prefix}: image")
    weight = read_plane(weight_path, weight_hdu, f"{prefix}: weight").data.astype(np.float64)
    image = image_plane.data.astype(np.float64)
    if weight.shape != image.shape:
        raise RealfakeError(f"{prefix}: weight has shape {weight.shape}, image {image.shape}")
    if np.any(weight < 0):
        raise RealfakeError(f"{prefix}: weight has negative values: neither an inverse variance nor a variance")
    if side["weight_kind"] == "variance":
        with np.errstate(divide="ignore", invalid="ignore"):
            inverse_variance = np.where(np.isfinite(weight) & (weight > 0), 1 / weight, 0.0)
    else:
        inverse_variance = np.where(np.isfinite(weight), weight, 0.0)
    files = [image_path, weight_path]
    if "mask" in side:
        mask_path, mask_hdu = side["mask"][band]
        mask = read_plane(mask_path, mask_hdu, f"{prefix}: mask")
        if mask.data.shape != image.shape:
            raise RealfakeError(f"{prefix}: mask has shape {mask.data.shape}, image {image.shape}")
        no_data = (mask.data.astype(np.int64) & _no_data_bits(side, mask, f"{prefix}: mask")) != 0
        inverse_variance[no_data] = 0.0
        files.append(mask_path)
    not_finite = ~np.isfinite(image)
    image[not_finite], inverse_variance[not_finite] = 0.0, 0.0
    check_weight(image, inverse_variance, f"{prefix}: weight ({side['weight_kind']})")
    factor = manifest.flux_factor
    return (image * factor).astype(np.float32), (inverse_variance / factor**2).astype(np.float32), image_plane, files


def read_side(manifest: Manifest, file_name: str, side: dict, bands: Sequence[str]) -> Coadd:
    """The coadd of one side (``tile["real"]`` or a run of ``tile["fake"]``) of tile ``file_name``, in
    ``bands``: every band's planes the same shape and WCS (the first band's image HDU's, origin 0)."""
    tile = manifest.tile(file_name)["tile"]
    images, inverse_variances, paths, first = [], [], [], None
    for band in bands:
        image, inverse_variance, plane, files = _band_planes(manifest, tile, side, band)
        message = where(manifest.path, tile, side_name(side), band) + "image"
        wcs = _wcs(plane, message)
        if first is None:
            first = (plane, wcs)
        elif image.shape != images[0].shape or not same_wcs(first[1], wcs):
            raise RealfakeError(f"{message}: shape or WCS differs from band {bands[0]}'s")
        images.append(image)
        inverse_variances.append(inverse_variance)
        paths += [Path(path) for path in files]
    return Coadd(
        file_name,
        tuple(bands),
        np.stack(images),
        np.stack(inverse_variances),
        first[1],
        first[0].header,
        tuple(dict.fromkeys(paths)),
    )
