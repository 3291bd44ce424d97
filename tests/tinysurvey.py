"""A tiny survey in a temporary directory, for the cutouts tests and the fault catalogue.

Brick 1238p245 with 128 x 128 pixel coadds, losslessly compressed so that pixel
values can be compared exactly: a DR5 tree and an obiwan tree (current layout).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS

from realfake import paths
from realfake.cli import main
from realfake.formats.cutouts import COUNT_ATTRIBUTES, read_attribute_text, read_cutouts_catalog

BRICK = "1238p245"
OTHER_BRICK = "1102p240"
SIZE = 128
HALF = 32
BRICK_ROW = {
    "brickname": BRICK, "brickid": 467899, "ra": 123.887195121951, "dec": 24.5, "ra1": 123.75,
    "ra2": 124.024390243902, "dec1": 24.375, "dec2": 24.625,
}  # fmt: skip
PIXEL_SCALE_DEG = 0.262 / 3600


# --------------------------------------------------------------------------- a tiny survey in tmp_path


def write_hdus(path: Path, hdu: fits.hdu.base.ExtensionHDU) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
    return path


def write_table(path: Path, columns: dict[str, tuple[str, object]]) -> Path:
    fits_columns = [
        fits.Column(name=name, format=form, array=np.asarray(values)) for name, (form, values) in columns.items()
    ]
    return write_hdus(path, fits.BinTableHDU.from_columns(fits_columns))


def write_brick_table(dr5_dir: Path, rows: list[dict]) -> Path:
    formats = {"brickname": "8A", "brickid": "J"}
    columns = {name: (formats.get(name, "D"), [row[name] for row in rows]) for name in BRICK_ROW}
    return write_table(dr5_dir / "survey-bricks.fits", columns)


class TinySurvey:
    """A DR5 tree and an obiwan tree (current layout) for brick 1238p245 with SIZE x SIZE coadds."""

    def __init__(self, root: Path, bands: tuple[str, ...] = ("g", "r", "z")) -> None:
        self.root, self.bands = root, bands
        self.dr5, self.obiwan = root / "dr5", root / "obiwan"
        write_brick_table(self.dr5, [BRICK_ROW])
        self.header = fits.Header()
        self.header["CTYPE1"], self.header["CTYPE2"] = "RA---TAN", "DEC--TAN"
        self.header["CRVAL1"], self.header["CRVAL2"] = BRICK_ROW["ra"], BRICK_ROW["dec"]
        self.header["CRPIX1"] = self.header["CRPIX2"] = SIZE / 2 + 0.5
        self.header["CD1_1"], self.header["CD1_2"] = -PIXEL_SCALE_DEG, 0.0
        self.header["CD2_1"], self.header["CD2_2"] = 0.0, PIXEL_SCALE_DEG
        self.wcs = WCS(self.header)

    def sky(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """ra, dec of 0-indexed pixel x, y."""
        ra, dec = self.wcs.all_pix2world(np.atleast_1d(x), np.atleast_1d(y), 0)
        return np.asarray(ra), np.asarray(dec)

    def dr5_coadd_dir(self) -> Path:
        return self.dr5 / "coadd" / "123" / BRICK

    def rsdir_coadd_dir(self, rsdir: str) -> Path:
        return self.obiwan / "coadd" / "123" / BRICK / rsdir

    def write_coadd(self, coadd_dir: Path, planes: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Lossless (GZIP_2, no quantization) coadds, so stamps can be compared with the arrays exactly."""
        for band, (image, inverse_variance) in planes.items():
            for kind, data in (("image", image), ("invvar", inverse_variance)):
                hdu = fits.CompImageHDU(
                    np.asarray(data, dtype=np.float32),
                    header=self.header,
                    compression_type="GZIP_2",
                    quantize_level=0.0,
                )
                write_hdus(Path(coadd_dir) / paths.coadd_name(BRICK, kind, band), hdu)

    def constant_planes(self, values: dict[str, float] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Band i: image i + 1, inverse variance 10 (i + 1), unless ``values`` gives the image."""
        planes = {}
        for index, band in enumerate(self.bands):
            value = (values or {}).get(band, index + 1.0)
            planes[band] = (np.full((SIZE, SIZE), value), np.full((SIZE, SIZE), 10.0 * (index + 1)))
        return planes

    def tractor_path(self) -> Path:
        return self.dr5 / "tractor" / "123" / f"tractor-{BRICK}.fits"

    def write_tractor(self, x, y, drop: tuple[str, ...] = (), path: Path | None = None, **overrides) -> Path:
        """Tractor catalog of sources at 0-indexed pixels x, y (bx, by deliberately 1-indexed: never to be used)."""
        x, y = np.atleast_1d(np.asarray(x, dtype=np.float64)), np.atleast_1d(np.asarray(y, dtype=np.float64))
        count = len(x)
        ra, dec = self.sky(x, y)
        columns = {
            "release": ("I", np.full(count, 5000)), "brickid": ("J", np.full(count, 467899)),
            "brickname": ("8A", [BRICK] * count), "objid": ("J", np.arange(count) + 10),
            "brick_primary": ("L", np.ones(count, dtype=bool)), "type": ("4A", ["PSF "] * count),
            "ra": ("D", ra), "dec": ("D", dec), "bx": ("E", x + 1), "by": ("E", y + 1),
            "fracdev": ("E", np.zeros(count)), "shapeexp_r": ("E", np.zeros(count)),
            "shapeexp_e1": ("E", np.zeros(count)), "shapeexp_e2": ("E", np.zeros(count)),
            "shapedev_r": ("E", np.zeros(count)), "shapedev_e1": ("E", np.zeros(count)),
            "shapedev_e2": ("E", np.zeros(count)),
        }  # fmt: skip
        for band in self.bands:
            columns[f"flux_{band}"] = ("E", np.full(count, 10.0))
            columns[f"flux_ivar_{band}"] = ("E", np.ones(count))
            columns[f"mw_transmission_{band}"] = ("E", np.full(count, 0.9))
            columns[f"nobs_{band}"] = ("I", np.full(count, 2))
            columns[f"psfsize_{band}"] = ("E", np.full(count, 1.2))
        for name, value in overrides.items():
            columns[name] = (columns[name][0], value)
        for name in drop:
            del columns[name]
        return write_table(path or self.tractor_path(), columns)

    def simcat_path(self, rsdir: str) -> Path:
        return self.obiwan / "obiwan" / "123" / BRICK / rsdir / f"simcat-elg-{BRICK}.fits"

    def write_simcat(self, rsdir: str, x, y, ids=None, drop: tuple[str, ...] = (), **overrides) -> Path:
        """Current-schema simcat of fakes at 0-indexed pixels x, y (its x, y deliberately 0-indexed: never used)."""
        x, y = np.atleast_1d(np.asarray(x, dtype=np.float64)), np.atleast_1d(np.asarray(y, dtype=np.float64))
        count = len(x)
        ra, dec = self.sky(x, y)
        columns = {
            "id": ("J", np.arange(count) if ids is None else ids), "ra": ("D", ra), "dec": ("D", dec),
            "x": ("E", x), "y": ("E", y),
            "gflux": ("E", np.full(count, 10.0)), "rflux": ("E", np.full(count, 10.0)),
            "zflux": ("E", np.full(count, 10.0)),
            "mw_transmission_g": ("E", np.full(count, 0.9)), "mw_transmission_r": ("E", np.full(count, 0.9)),
            "mw_transmission_z": ("E", np.full(count, 0.9)),
            "n": ("E", np.ones(count)), "rhalf": ("E", np.full(count, 0.5)),
            "e1": ("E", np.zeros(count)), "e2": ("E", np.zeros(count)),
        }  # fmt: skip
        for name, value in overrides.items():
            columns[name] = (columns[name][0], value)
        for name in drop:
            del columns[name]
        return write_table(self.simcat_path(rsdir), columns)

    def arguments(self, kind: str, out: Path, *extra: str) -> list[str]:
        bands = "".join(self.bands)
        return ["cutouts", "--kind", kind, "--brick", BRICK, "--out", str(out), "--bands", bands,
                "--dr5-dir", str(self.dr5), "--obiwan-dir", str(self.obiwan), *extra]  # fmt: skip


def cutouts_cli(arguments: list[str], capsys) -> tuple[int, str]:
    """``realfake <arguments>`` in process: exit status and stderr."""
    status = main(arguments)
    return status, capsys.readouterr().err


def load(path: Path) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """stamps, catalog and attributes of a cutouts file."""
    with h5py.File(path, "r") as cutouts:
        stamps = cutouts["stamps"][()]
        attributes = {key: read_attribute_text(value) for key, value in cutouts.attrs.items()}
    return stamps, read_cutouts_catalog(path), attributes


def counts(attributes: dict) -> dict[str, int]:
    return {key: int(attributes[key]) for key in COUNT_ATTRIBUTES}
