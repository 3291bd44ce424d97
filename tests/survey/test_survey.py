"""Tests for realfake.survey.legacy: real DR5/obiwan files from the shared folder, plus tiny synthetic files."""

from __future__ import annotations

import gzip
from pathlib import Path

import galsim
import numpy as np
import pytest
from astropy.io import fits

from realfake import paths
from realfake.errors import RealfakeError
from realfake.survey import legacy, obiwan

OBIWAN_BRICK = "1238p245"
ZOOM_BRICK = "1102p240"


@pytest.fixture(scope="module")
def obiwan_rs0(realdata: Path) -> obiwan.RsDir:
    rsdirs = obiwan.find_rsdirs(realdata / "obiwan_1238p245_dr5", OBIWAN_BRICK)
    assert len(rsdirs) == 1
    return rsdirs[0]


@pytest.fixture(scope="module")
def obiwan_coadd(obiwan_rs0: obiwan.RsDir) -> legacy.Coadd:
    return legacy.read_coadd(obiwan_rs0.coadd_dir, OBIWAN_BRICK, bands=("z",))


# --------------------------------------------------------------------------- synthetic file writers


def _tan_header(
    crpix: tuple[float, float] = (16.5, 16.5), crval: tuple[float, float] = (123.8872, 24.5)
) -> fits.Header:
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRVAL1"], header["CRVAL2"] = crval
    header["CRPIX1"], header["CRPIX2"] = crpix
    header["CD1_1"], header["CD1_2"] = -7.27777777777778e-05, 0.0
    header["CD2_1"], header["CD2_2"] = 0.0, 7.27777777777778e-05
    return header


def _write_coadd_file(path: Path, data: np.ndarray, header: fits.Header | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    hdu = fits.CompImageHDU(data.astype(np.float32), header=header or _tan_header(), compression_type="RICE_1")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


def _write_coadd(coadd_dir: Path, brick_name: str, bands: tuple[str, ...], size: int = 32) -> None:
    """Image of band i is the constant i + 1; inverse variance is 100 (i + 1)."""
    for index, band in enumerate(bands):
        image = np.full((size, size), index + 1.0)
        _write_coadd_file(Path(coadd_dir) / paths.coadd_name(brick_name, "image", band), image)
        _write_coadd_file(Path(coadd_dir) / paths.coadd_name(brick_name, "invvar", band), 100.0 * image)


def _write_table(path: Path, columns: dict[str, tuple[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fits_columns = [
        fits.Column(name=name, format=form, array=np.asarray(values)) for name, (form, values) in columns.items()
    ]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(fits_columns)]).writeto(path)
    return path


def _older_simcat_columns() -> dict[str, tuple[str, object]]:
    return {
        "id": ("J", [3, 7]), "seed": ("J", [1, 1]), "ra": ("D", [123.9, 123.8]), "dec": ("D", [24.5, 24.6]),
        "x": ("D", [10.5, 20.25]), "y": ("D", [1.0, 30.0]), "gflux": ("D", [1.0, 2.0]), "rflux": ("D", [3.0, 4.0]),
        "zflux": ("D", [5.0, -1.0]), "sersicn": ("D", [1.0, 4.0]), "rhalf": ("D", [0.5, 1.25]),
        "ba": ("D", [0.5, 0.8]), "phi": ("D", [30.0, 135.0]),
    }  # fmt: skip


def _current_simcat_columns() -> dict[str, tuple[str, object]]:
    columns = {
        key: value for key, value in _older_simcat_columns().items() if key not in ("seed", "sersicn", "ba", "phi")
    }
    columns.update({
        "mw_transmission_g": ("E", [0.9, 0.9]), "mw_transmission_r": ("E", [0.95, 0.95]),
        "mw_transmission_z": ("E", [0.5, 0.5]), "n": ("D", [1.0, 4.0]),
        "e1": ("D", [0.1, -0.2]), "e2": ("D", [0.0, 0.3]),
    })  # fmt: skip
    return columns


def _tractor_columns(bands: tuple[str, ...] = ("g", "r", "z")) -> dict[str, tuple[str, object]]:
    columns: dict[str, tuple[str, object]] = {
        "release": ("I", [5000, 5000, 5000]), "brickid": ("J", [1, 1, 1]), "brickname": ("8A", ["1238p245"] * 3),
        "objid": ("J", [0, 1, 2]), "brick_primary": ("L", [True, False, True]),
        "type": ("4A", ["PSF ", "EXP ", "COMP"]), "ra": ("D", [1.0, 2.0, 3.0]), "dec": ("D", [4.0, 5.0, 6.0]),
        "bx": ("E", [10.5, 20.0, 30.0]), "by": ("E", [1.5, 2.5, 3.5]), "dchisq": ("5E", np.zeros((3, 5))),
        "fracdev": ("E", [0.0] * 3), "shapeexp_r": ("E", [0.0, 0.8, 0.5]), "shapeexp_e1": ("E", [0.0] * 3),
        "shapeexp_e2": ("E", [0.0] * 3), "shapedev_r": ("E", [0.0] * 3), "shapedev_e1": ("E", [0.0] * 3),
        "shapedev_e2": ("E", [0.0] * 3),
    }  # fmt: skip
    for band in bands:
        columns[f"flux_{band}"] = ("E", [10.0, 0.0, -1.0])
        columns[f"flux_ivar_{band}"] = ("E", [1.0, 1.0, 1.0])
        columns[f"mw_transmission_{band}"] = ("E", [0.5, 0.5, 0.5])
        columns[f"nobs_{band}"] = ("I", [1, 2, 3])
        columns[f"psfsize_{band}"] = ("E", [1.2, 1.3, 1.4])
    return columns


def _make_rsdirs(root: Path, layout: str, names: list[str], brick_name: str = OBIWAN_BRICK) -> None:
    for name in names:
        if layout == "current":
            simcat = root / "obiwan" / brick_name[:3] / brick_name / name / f"simcat-elg-{brick_name}.fits"
        else:
            simcat = root / "elg" / brick_name[:3] / brick_name / name / "obiwan" / f"simcat-elg-{brick_name}.fits"
        _write_table(simcat, _older_simcat_columns())


# --------------------------------------------------------------------------- real files


def test_find_rsdirs_on_real_obiwan_run_finds_rs0_older_layout(obiwan_rs0: obiwan.RsDir, realdata: Path) -> None:
    base = realdata / "obiwan_1238p245_dr5" / "elg" / "123" / OBIWAN_BRICK / "rs0"
    assert (obiwan_rs0.name, obiwan_rs0.layout) == ("rs0", "older")
    assert obiwan_rs0.coadd_dir == base / "coadd"
    assert obiwan_rs0.simcat_path == base / "obiwan" / "simcat-elg-1238p245.fits"
    assert obiwan_rs0.tractor_path == base / "tractor" / "tractor-1238p245.fits"


def test_read_tractor_on_real_catalog(obiwan_rs0: obiwan.RsDir) -> None:
    tractor = legacy.read_tractor(obiwan_rs0.tractor_path, bands=("z",))
    assert list(tractor["type"]) == ["PSF", "PSF"]
    assert list(tractor["brickname"]) == [OBIWAN_BRICK] * 2
    assert tractor["bx"].dtype == np.float64 and tractor["by"].dtype == np.float64
    assert tractor["brick_primary"].dtype == bool and tractor["brick_primary"].all()
    numeric = tractor.select_dtypes(include=[np.number]).columns
    assert "flux_z" in numeric and all(tractor[column].to_numpy().dtype.isnative for column in numeric)
    assert (tractor["release"] == 5000).all()
    assert "apflux_z" not in tractor.columns  # (N, 8) columns are dropped
    expected = tractor["flux_z"].to_numpy(np.float64) / tractor["mw_transmission_z"].to_numpy(np.float64)
    np.testing.assert_allclose(tractor["flux_dered_z"], expected)
    np.testing.assert_allclose(tractor["mag_dered_z"], 22.5 - 2.5 * np.log10(expected))


def test_real_tractor_bx_by_are_the_0_indexed_wcs_pixel(obiwan_rs0: obiwan.RsDir, obiwan_coadd: legacy.Coadd) -> None:
    tractor = legacy.read_tractor(obiwan_rs0.tractor_path, bands=("z",))
    x, y = legacy.wcs_pixel(obiwan_coadd.wcs, tractor["ra"], tractor["dec"], origin=0)
    assert x.dtype == np.float64
    np.testing.assert_allclose(x, tractor["bx"], atol=0.01)
    np.testing.assert_allclose(y, tractor["by"], atol=0.01)


def test_real_simcat_x_y_are_1_indexed_fits_pixels(obiwan_rs0: obiwan.RsDir, obiwan_coadd: legacy.Coadd) -> None:
    simcat = obiwan.read_simcat(obiwan_rs0.simcat_path)
    x_fits, y_fits = legacy.wcs_pixel(obiwan_coadd.wcs, simcat["ra"], simcat["dec"], origin=1)
    np.testing.assert_allclose(simcat["x_fits"], x_fits, atol=0.01)
    np.testing.assert_allclose(simcat["y_fits"], y_fits, atol=0.01)
    x, y = legacy.wcs_pixel(obiwan_coadd.wcs, simcat["ra"], simcat["dec"], origin=0)
    np.testing.assert_allclose(simcat["x"], x, atol=0.01)
    np.testing.assert_allclose(simcat["y"], y, atol=0.01)


def test_real_older_simcat_normalised_columns_and_units(obiwan_rs0: obiwan.RsDir) -> None:
    raw = fits.getdata(obiwan_rs0.simcat_path, ext=1)
    simcat = obiwan.read_simcat(obiwan_rs0.simcat_path)
    assert simcat.attrs["schema"] == "older" and (simcat["schema"] == "older").all()
    assert simcat.attrs["path"] == str(obiwan_rs0.simcat_path)
    assert simcat["id"].dtype == np.int64 and list(simcat["id"]) == list(raw["id"])
    for index, (ba, phi) in enumerate(zip(raw["ba"], raw["phi"])):
        shear = galsim.Shear(q=ba, beta=phi * galsim.degrees)
        assert simcat["e1"].iloc[index] == pytest.approx(shear.g1, abs=1e-12)
        assert simcat["e2"].iloc[index] == pytest.approx(shear.g2, abs=1e-12)
    np.testing.assert_array_equal(simcat["rhalf"], raw["rhalf"])
    np.testing.assert_array_equal(simcat["sersic_n"], raw["sersicn"])
    np.testing.assert_array_equal(simcat["flux_z"], raw["zflux"])
    assert simcat[["mw_transmission_z", "flux_dered_z", "mag_dered_z"]].isna().all().all()

    transmission = {"g": 0.8, "r": 0.9, "z": 0.95}
    dereddened = obiwan.read_simcat(obiwan_rs0.simcat_path, mw_transmission=transmission)
    for band in ("g", "r", "z"):
        expected = raw[f"{band}flux"] / transmission[band]
        np.testing.assert_allclose(dereddened[f"flux_dered_{band}"], expected)
        np.testing.assert_allclose(dereddened[f"mag_dered_{band}"], 22.5 - 2.5 * np.log10(expected))


def test_read_coadd_on_real_z_only_brick(obiwan_rs0: obiwan.RsDir, obiwan_coadd: legacy.Coadd) -> None:
    assert obiwan_coadd.bands == ("z",)
    assert obiwan_coadd.image.shape == (1, 3600, 3600) and obiwan_coadd.image.dtype == np.float32
    assert obiwan_coadd.inverse_variance.shape == (1, 3600, 3600) and obiwan_coadd.inverse_variance.dtype == np.float32
    rows, columns = np.nonzero(obiwan_coadd.inverse_variance[0] > 0)
    assert rows.size > 0
    assert rows.min() >= 3411 and rows.max() <= 3599
    assert columns.min() >= 1916 and columns.max() <= 2103
    tractor = legacy.read_tractor(obiwan_rs0.tractor_path, bands=("z",))
    at_sources = obiwan_coadd.inverse_variance[
        0, np.round(tractor["by"]).astype(int), np.round(tractor["bx"]).astype(int)
    ]
    assert np.all((at_sources > 600) & (at_sources < 1000))
    assert obiwan_coadd.header["BRICKNAM"] == OBIWAN_BRICK
    assert obiwan_coadd.paths[0].name == "legacysurvey-1238p245-image-z.fits.fz"


def test_read_coadd_of_missing_band_names_the_missing_file(obiwan_rs0: obiwan.RsDir) -> None:
    with pytest.raises(RealfakeError, match="legacysurvey-1238p245-image-g.fits.fz"):
        legacy.read_coadd(obiwan_rs0.coadd_dir, OBIWAN_BRICK, bands=("g", "r", "z"))


def test_read_coadd_of_zoomed_real_brick_keeps_its_wcs(realdata: Path) -> None:
    coadd_dir = realdata / "dr5_1102p240_zoom" / "coadd" / "110" / ZOOM_BRICK
    coadd = legacy.read_coadd(coadd_dir, ZOOM_BRICK, bands=("z",))
    assert coadd.image.shape == (1, 100, 100)
    np.testing.assert_allclose(coadd.wcs.wcs.crpix, [1300.5, 1150.5])
    np.testing.assert_allclose(coadd.wcs.pixel_scale_matrix.diagonal() * 3600, [-0.262, 0.262], rtol=1e-9)


# --------------------------------------------------------------------------- names, magnitudes


def test_nanomaggies_to_mag() -> None:
    mags = legacy.nanomaggies_to_mag([1.0, 100.0, 0.0, -3.0, np.nan])
    np.testing.assert_allclose(mags[:2], [22.5, 17.5])
    assert np.isnan(mags[2:]).all()


# --------------------------------------------------------------------------- brick table


@pytest.mark.parametrize("file_name", ["survey-bricks.fits", "survey-bricks.fits.gz"])
def test_brick_table_read_from_fits_and_gz(tmp_path: Path, file_name: str) -> None:
    columns = {
        "BRICKNAME": ("8A", ["1238p245", "1102p240"]), "BRICKID": ("J", [467899, 465217]),
        "RA": ("D", [123.887, 110.212]), "DEC": ("D", [24.5, 24.0]), "RA1": ("D", [123.75, 110.07]),
        "RA2": ("D", [124.02, 110.35]), "DEC1": ("D", [24.375, 23.875]), "DEC2": ("D", [24.625, 24.125]),
    }  # fmt: skip
    plain = _write_table(tmp_path / "plain.fits", columns)
    target = tmp_path / "dr5" / file_name
    target.parent.mkdir()
    target.write_bytes(gzip.compress(plain.read_bytes()) if file_name.endswith(".gz") else plain.read_bytes())

    path = legacy.find_brick_table(tmp_path / "dr5")
    assert path == target
    table = legacy.read_brick_table(path)
    assert table["1238p245"] == legacy.Brick("1238p245", 467899, 123.887, 24.5, 123.75, 124.02, 24.375, 24.625)
    assert legacy.lookup_brick(table, "1102p240", path).brickid == 465217
    with pytest.raises(RealfakeError, match=f"brick 0000p000 is not in the survey brick table {path}"):
        legacy.lookup_brick(table, "0000p000", path)


def test_brick_table_missing_file_and_column(tmp_path: Path) -> None:
    with pytest.raises(RealfakeError, match="survey-bricks.fits.gz.*survey-bricks.fits"):
        legacy.find_brick_table(tmp_path)
    path = _write_table(tmp_path / "survey-bricks.fits", {"brickname": ("8A", ["1238p245"]), "ra": ("D", [1.0])})
    with pytest.raises(RealfakeError, match=r"survey-bricks\.fits.*brickid"):
        legacy.read_brick_table(path)


# --------------------------------------------------------------------------- coadds


def test_read_coadd_stacks_bands_in_requested_order(tmp_path: Path) -> None:
    _write_coadd(tmp_path, OBIWAN_BRICK, ("g", "r", "z"))
    coadd = legacy.read_coadd(tmp_path, OBIWAN_BRICK, bands=("z", "g"))
    assert coadd.image.shape == (2, 32, 32)
    np.testing.assert_allclose(coadd.image[:, 5, 7], [3.0, 1.0], atol=1e-3)
    np.testing.assert_allclose(coadd.inverse_variance[:, 5, 7], [300.0, 100.0], rtol=0.05)
    assert [path.name for path in coadd.paths] == [
        "legacysurvey-1238p245-image-z.fits.fz", "legacysurvey-1238p245-invvar-z.fits.fz",
        "legacysurvey-1238p245-image-g.fits.fz", "legacysurvey-1238p245-invvar-g.fits.fz",
    ]  # fmt: skip


def test_nan_image_pixels_get_zero_inverse_variance(tmp_path: Path) -> None:
    image = np.full((32, 32), 2.0)
    image[3, 4] = np.nan
    image_path = _write_coadd_file(Path(tmp_path) / paths.coadd_name(OBIWAN_BRICK, "image", "r"), image)
    _write_coadd_file(Path(tmp_path) / paths.coadd_name(OBIWAN_BRICK, "invvar", "r"), np.full((32, 32), 50.0))
    assert np.isnan(fits.getdata(image_path, ext=1)[3, 4])  # the NaN survived compression
    coadd = legacy.read_coadd(tmp_path, OBIWAN_BRICK, bands=("r",))
    assert coadd.image[0, 3, 4] == 0.0 and coadd.inverse_variance[0, 3, 4] == 0.0
    assert np.isfinite(coadd.image).all()
    assert coadd.inverse_variance[0, 3, 5] == pytest.approx(50.0, rel=0.05)


def test_truncated_and_garbage_coadds_raise_naming_the_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    _write_coadd(tmp_path, OBIWAN_BRICK, ("z",), size=128)
    image_path = Path(tmp_path) / paths.coadd_name(OBIWAN_BRICK, "image", "z")
    _write_coadd_file(image_path.with_suffix(".tmp"), rng.normal(size=(128, 128)))
    whole = image_path.with_suffix(".tmp").read_bytes()
    image_path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(RealfakeError, match=str(image_path)):
        legacy.read_coadd(tmp_path, OBIWAN_BRICK, bands=("z",))

    invvar_path = Path(tmp_path) / paths.coadd_name(OBIWAN_BRICK, "invvar", "z")
    image_path.write_bytes(whole)
    invvar_path.write_bytes(b"not a FITS file " * 300)
    with pytest.raises(RealfakeError, match=str(invvar_path)):
        legacy.read_coadd(tmp_path, OBIWAN_BRICK, bands=("z",))


def test_read_coadd_refuses_mismatched_wcs_or_shape(tmp_path: Path) -> None:
    _write_coadd(tmp_path, OBIWAN_BRICK, ("g", "r"))
    shifted = Path(tmp_path) / paths.coadd_name(OBIWAN_BRICK, "invvar", "r")
    shifted.unlink()
    _write_coadd_file(shifted, np.ones((32, 32)), _tan_header(crpix=(16.5, 16.6)))
    with pytest.raises(RealfakeError, match="different WCS") as error:
        legacy.read_coadd(tmp_path, OBIWAN_BRICK, bands=("g", "r"))
    assert str(shifted) in str(error.value)

    smaller = Path(tmp_path) / paths.coadd_name(OBIWAN_BRICK, "image", "r")
    smaller.unlink()
    _write_coadd_file(smaller, np.ones((16, 32)))
    with pytest.raises(RealfakeError, match=r"shape \(16, 32\)") as error:
        legacy.read_coadd(tmp_path, OBIWAN_BRICK, bands=("g", "r"))
    assert str(smaller) in str(error.value)


# --------------------------------------------------------------------------- catalogs


def test_read_tractor_synthetic_types_and_dereddening(tmp_path: Path) -> None:
    path = _write_table(tmp_path / "tractor-1238p245.fits", _tractor_columns())
    tractor = legacy.read_tractor(path)
    assert list(tractor["type"]) == ["PSF", "EXP", "COMP"]
    assert list(tractor["brick_primary"]) == [True, False, True]
    np.testing.assert_allclose(tractor["flux_dered_g"], [20.0, 0.0, -2.0])
    np.testing.assert_allclose(tractor["mag_dered_g"][0], 22.5 - 2.5 * np.log10(20.0))
    assert tractor["mag_dered_g"][1:].isna().all()


def test_read_tractor_without_flux_g_names_file_and_column(tmp_path: Path) -> None:
    columns = _tractor_columns()
    del columns["flux_g"]
    path = _write_table(tmp_path / "tractor-1238p245.fits", columns)
    with pytest.raises(RealfakeError, match="flux_g") as error:
        legacy.read_tractor(path)
    assert str(path) in str(error.value)
    assert len(legacy.read_tractor(path, bands=("r", "z"))) == 3  # flux_g is only required for band g


def test_current_simcat_normalises_to_the_older_columns(tmp_path: Path) -> None:
    older = obiwan.read_simcat(_write_table(tmp_path / "older.fits", _older_simcat_columns()))
    current_path = _write_table(tmp_path / "current.fits", _current_simcat_columns())
    current = obiwan.read_simcat(current_path, mw_transmission={"g": 0.1, "r": 0.1, "z": 0.1})
    assert list(current.columns) == list(older.columns)
    assert current.attrs["schema"] == "current" and (current["schema"] == "current").all()
    assert current.dtypes.drop("schema").equals(older.dtypes.drop("schema"))
    np.testing.assert_allclose(current["mw_transmission_z"], [0.5, 0.5])  # the file wins over the argument
    np.testing.assert_allclose(current["flux_dered_z"], [10.0, -2.0])
    assert np.isnan(current["mag_dered_z"][1])
    np.testing.assert_allclose(current["e1"], [0.1, -0.2])
    np.testing.assert_allclose(current["sersic_n"], [1.0, 4.0])
    np.testing.assert_allclose(current["x"], [9.5, 19.25])
    np.testing.assert_allclose(older["e1"][0], (1 - 0.5) / (1 + 0.5) * np.cos(np.deg2rad(60.0)))


def test_simcat_of_neither_schema_names_file_and_columns(tmp_path: Path) -> None:
    columns = _older_simcat_columns()
    del columns["phi"]
    path = _write_table(tmp_path / "simcat-elg-1238p245.fits", columns)
    with pytest.raises(RealfakeError, match="phi") as error:
        obiwan.read_simcat(path)
    assert str(path) in str(error.value)


# --------------------------------------------------------------------------- obiwan rs dirs

RSDIR_NAMES_SHUFFLED = ["more_skip_rs0", "rs10000", "skip_rs500", "more_rs1000", "rs500", "rs0", "skip_rs0"]
RSDIR_NAMES_SORTED = ["rs0", "rs500", "rs10000", "skip_rs0", "skip_rs500", "more_rs1000", "more_skip_rs0"]


@pytest.mark.parametrize("layout", ["current", "older"])
def test_find_rsdirs_sorts_and_ignores_other_dirs(tmp_path: Path, layout: str) -> None:
    _make_rsdirs(tmp_path, layout, RSDIR_NAMES_SHUFFLED + ["rs0_old", "rsx", "extra_rs5"])
    brick_dir = tmp_path / ("obiwan" if layout == "current" else "elg") / "123" / OBIWAN_BRICK
    (brick_dir / "rs2000").mkdir()  # no simcat: not a finished rs dir
    rsdirs = obiwan.find_rsdirs(tmp_path, OBIWAN_BRICK)
    assert [rsdir.name for rsdir in rsdirs] == RSDIR_NAMES_SORTED
    assert {rsdir.layout for rsdir in rsdirs} == {layout}
    assert all(rsdir.simcat_path.is_file() for rsdir in rsdirs)
    first = rsdirs[0]
    if layout == "current":
        assert first.coadd_dir == tmp_path / "coadd" / "123" / OBIWAN_BRICK / "rs0"
        assert first.tractor_path == tmp_path / "tractor" / "123" / OBIWAN_BRICK / "rs0" / "tractor-1238p245.fits"
    else:
        assert first.coadd_dir == brick_dir / "rs0" / "coadd"
        assert first.tractor_path == brick_dir / "rs0" / "tractor" / "tractor-1238p245.fits"


def test_find_rsdirs_refuses_both_layouts_and_returns_empty_for_none(tmp_path: Path) -> None:
    assert obiwan.find_rsdirs(tmp_path, OBIWAN_BRICK) == []
    _make_rsdirs(tmp_path, "current", ["rs0"])
    _make_rsdirs(tmp_path, "older", ["rs500"])
    with pytest.raises(RealfakeError, match=f"brick {OBIWAN_BRICK} .*both layouts"):
        obiwan.find_rsdirs(tmp_path, OBIWAN_BRICK)
    assert obiwan.find_rsdirs(tmp_path, "1102p240") == []


def test_a_dr9_region_directory_finds_the_brick_table_above_it(tmp_path: Path) -> None:
    """DR8-DR10: coadd/ and tractor/ in dr9/south, the one brick table in dr9; a region's own table wins."""
    release = tmp_path / "dr9"
    region = release / "south"
    region.mkdir(parents=True)
    (release / "survey-bricks.fits.gz").write_bytes(b"")
    assert legacy.find_brick_table(region) == release / "survey-bricks.fits.gz"
    assert paths.dr5_file(str(region), "brick_table") == str(release / "survey-bricks.fits.gz")
    (region / "survey-bricks.fits").write_bytes(b"")
    assert legacy.find_brick_table(region) == region / "survey-bricks.fits"
    with pytest.raises(RealfakeError, match="none of .*other/survey-bricks.fits.gz"):
        legacy.find_brick_table(tmp_path / "other")
