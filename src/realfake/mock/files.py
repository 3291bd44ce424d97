"""Writing the mock survey in the real DR5 and obiwan file formats.

Every file is written to a temporary name and renamed (:mod:`realfake.atomic`).
Files carry no timestamps and compression uses a fixed dither seed, so the same
settings give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from astropy.io import fits

from realfake.atomic import atomic_output

IMAGE_QUANTIZE = -1e-4  # negative: absolute quantization step of 1e-4 nanomaggies, as DR5
INVVAR_QUANTIZE = 16.0  # relative quantization, as DR5
# SUBTRACTIVE_DITHER_2 keeps exact zeros, so "inverse variance 0 = no coverage" survives compression.
DITHER_KEEPING_ZEROS = 2


def _write(hdus: fits.HDUList, path: Path) -> None:
    with atomic_output(path) as temporary:
        hdus.writeto(temporary)


def write_compressed_image(path: Path, data: np.ndarray, header: fits.Header, kind: str, dither_seed: int) -> None:
    """Write a float32 image as DR5 does: empty HDU 0, RICE_1 tile-compressed HDU 1.

    ``kind`` is ``"image"`` (absolute quantization 1e-4 nmgy) or ``"invvar"``
    (relative quantization 16).
    """
    data = np.asarray(data, dtype=np.float32)
    if kind == "image":
        quantize, tile_shape = IMAGE_QUANTIZE, None
    else:
        # One tile: relative quantization cannot quantize a constant tile (a row with
        # no coverage), and the lossless gzip fallback it then uses stamps the time.
        quantize, tile_shape = INVVAR_QUANTIZE, data.shape
    compressed = fits.CompImageHDU(
        data,
        header=header,
        compression_type="RICE_1",
        quantize_level=quantize,
        quantize_method=DITHER_KEEPING_ZEROS,
        dither_seed=dither_seed,
        tile_shape=tile_shape,
    )
    _write(fits.HDUList([fits.PrimaryHDU(), compressed]), path)


def write_table(
    path: Path, columns: Mapping[str, tuple[str, np.ndarray]], header: Mapping[str, object] | None = None
) -> None:
    """Write a FITS binary table (HDU 1) from ``{name: (fits_format, values)}``."""
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(name=name, format=fits_format, array=values) for name, (fits_format, values) in columns.items()]
    )
    for key, value in (header or {}).items():
        hdu.header[key] = value
    _write(fits.HDUList([fits.PrimaryHDU(), hdu]), path)


def write_text(path: Path, text: str) -> None:
    with atomic_output(path) as temporary:
        temporary.write_text(text)


def write_exposure(
    path: Path,
    image: np.ndarray,
    mask: np.ndarray,
    variance: np.ndarray,
    header: fits.Header,
    mask_planes: Mapping[str, int],
    primary: Mapping[str, object] | None = None,
) -> None:
    """Write an afw ExposureF as FITS (../shared/FORMATS.md section 3): empty HDU 0 (``primary`` cards), IMAGE
    float32 with ``header`` (the WCS), MASK int32 with an ``MP_<NAME>`` card giving each plane's bit, VARIANCE
    float32."""
    mask_header = header.copy()
    for name, bit in mask_planes.items():
        mask_header[f"HIERARCH MP_{name}"] = bit  # afw writes them as HIERARCH cards too
    hdus = fits.HDUList(
        [
            fits.PrimaryHDU(header=fits.Header(list((primary or {}).items()))),
            fits.ImageHDU(np.asarray(image, dtype=np.float32), header=header, name="IMAGE"),
            fits.ImageHDU(np.asarray(mask, dtype=np.int32), header=mask_header, name="MASK"),
            fits.ImageHDU(np.asarray(variance, dtype=np.float32), header=header, name="VARIANCE"),
        ]
    )
    _write(hdus, path)
