"""Tractor catalogs of DR5 to DR10 (realfake.survey.tractor through realfake.survey.legacy.read_tractor) and the
selections on them (realfake.survey.selection): the release told, DUP rows dropped, the canonical shape columns,
elg_padded restated for DR9, and selections written as expressions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from fixtures.tractor_releases import DR8_SHAPES, DR9_SHAPES, flux_of, tractor_columns, write_tractor_catalog

from realfake.cutouts import CutoutSettings
from realfake.errors import RealfakeError
from realfake.survey import legacy, obiwan
from realfake.survey.selection import check_selection, missing_selection_bands, select, tractor_half_light_radius

OBIWAN_BRICK = "1238p245"


def f32(value: float) -> float:
    """``value`` as the float32 the file stores, read back as float64."""
    return float(np.float32(value))


# --------------------------------------------------------------------------- the release and DUP rows


def test_dr9_catalog_is_told_its_dup_rows_dropped_and_counted(tmp_path: Path) -> None:
    path = write_tractor_catalog(tmp_path / "tractor.fits", "dr9", ["PSF", "DUP", "REX", "EXP", "DEV", "SER", "DUP"])
    tractor = legacy.read_tractor(path)
    assert (tractor.attrs["release"], tractor.attrs["schema"], tractor.attrs["dropped_dup"]) == ("dr9", "dr9", 2)
    assert tractor.attrs["path"] == str(path)
    assert list(tractor["type"]) == ["PSF", "REX", "EXP", "DEV", "SER"]
    assert list(tractor["objid"]) == [0, 2, 3, 4, 5] and list(tractor.index) == [0, 1, 2, 3, 4]
    assert tractor["maskbits"].dtype == np.int32


def test_dr8_padded_types_are_stripped_and_its_dup_rows_dropped(tmp_path: Path) -> None:
    path = write_tractor_catalog(tmp_path / "tractor.fits", "dr8", ["DUP", "PSF", "COMP"])
    tractor = legacy.read_tractor(path)
    assert (tractor.attrs["release"], tractor.attrs["schema"], tractor.attrs["dropped_dup"]) == ("dr8", "dr8", 1)
    assert list(tractor["type"]) == ["PSF", "COMP"]
    assert tractor["maskbits"].dtype == np.int32


def test_dr10_keeps_maskbit_16_and_reads_the_i_band(tmp_path: Path) -> None:
    maskbits = [2**16 + 2, 2**12, 0]
    path = write_tractor_catalog(tmp_path / "tractor.fits", "dr10", ["PSF", "EXP", "SER"], maskbits=maskbits)
    tractor = legacy.read_tractor(path, bands=("g", "r", "i", "z"))
    assert (tractor.attrs["release"], tractor.attrs["schema"], tractor.attrs["dropped_dup"]) == ("dr10", "dr10", 0)
    assert tractor["maskbits"].dtype == np.int32 and list(tractor["maskbits"]) == maskbits
    np.testing.assert_allclose(tractor["mag_dered_i"], 22.2, rtol=1e-6)
    assert list(select(tractor, "maskbits // 2**16 % 2 == 0")) == [False, True, True]

    release_10_1 = write_tractor_catalog(tmp_path / "dr10.1.fits", "dr10", ["PSF"], release=[10002])
    assert legacy.read_tractor(release_10_1).attrs["release"] == "dr10"


@pytest.mark.parametrize(
    ("release", "numbers", "name", "schema"),
    [("dr8", [5000], "dr5", "dr5"), ("dr8", [7000], "dr7", "dr5"), ("dr8", [8001], "dr8", "dr8"),
     ("dr9", [9011], "dr9", "dr9"), ("dr9", [9012], "dr9", "dr9")],
)  # fmt: skip
def test_release_numbers_name_the_data_release(tmp_path, release, numbers, name, schema) -> None:
    path = write_tractor_catalog(tmp_path / "tractor.fits", release, ["EXP"], release=numbers)
    tractor = legacy.read_tractor(path)
    assert (tractor.attrs["release"], tractor.attrs["schema"]) == (name, schema)


def test_an_empty_catalog_is_told_by_its_columns(tmp_path: Path) -> None:
    for release, expected in (("dr8", "dr8"), ("dr9", "dr9"), ("dr10", "dr10")):
        path = write_tractor_catalog(tmp_path / f"{release}.fits", release, [])
        tractor = legacy.read_tractor(path)
        assert len(tractor) == 0 and tractor.attrs["release"] == expected
        assert len(select(tractor, "elg_padded")) == 0 and len(select(tractor, "type == 'PSF'")) == 0


def test_a_catalog_whose_columns_and_release_disagree_is_refused_naming_both(tmp_path: Path) -> None:
    dr5_columns_release_9010 = tractor_columns("dr8", ["EXP"], release=[9010])
    path = _write(tmp_path / "dr5-columns-9010.fits", dr5_columns_release_9010)
    with pytest.raises(RealfakeError) as error:
        legacy.read_tractor(path)
    message = str(error.value)
    assert str(path) in message and "release 9010" in message
    assert "expected shape_r, shape_e1, shape_e2, sersic" in message and "found fracdev, shapeexp_r" in message

    no_shapes = {name: value for name, value in tractor_columns("dr9", ["EXP"]).items() if not name.startswith("sha")}
    path = _write(tmp_path / "no-shapes.fits", no_shapes)
    with pytest.raises(RealfakeError, match=r"expected shape_r, .*found sersic$") as error:
        legacy.read_tractor(path)
    assert str(path) in str(error.value)

    path = write_tractor_catalog(tmp_path / "mixed.fits", "dr9", ["EXP", "PSF"], release=[8000, 9010])
    with pytest.raises(RealfakeError, match="mixes data releases: release values 8000, 9010"):
        legacy.read_tractor(path)
    path = write_tractor_catalog(tmp_path / "dr4.fits", "dr8", ["EXP"], release=[4000])
    with pytest.raises(RealfakeError, match="has release 4000, not one of DR5-DR10"):
        legacy.read_tractor(path)
    without_release = {name: value for name, value in tractor_columns("dr9", ["EXP"]).items() if name != "release"}
    with pytest.raises(RealfakeError, match="lacks required column.*release"):
        legacy.read_tractor(_write(tmp_path / "no-release.fits", without_release))


def _write(path: Path, columns: dict) -> Path:
    fits_columns = [fits.Column(name=name, format=form, array=values) for name, (form, values) in columns.items()]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(fits_columns)]).writeto(path)
    return path


# --------------------------------------------------------------------------- canonical shape columns


def test_dr9_canonical_shapes_per_type(tmp_path: Path) -> None:
    path = write_tractor_catalog(
        tmp_path / "tractor.fits", "dr9", ["PSF", "REX", "EXP", "DEV", "SER"],
        shape_r=[0.0, 0.3, 0.7, 1.1, 1.3], shape_e1=[0.0, 0.0, 0.2, -0.3, 0.4], shape_e2=[0.0, 0.0, 0.1, 0.25, -0.15],
        sersic=[0.0, 0.0, 0.0, 0.0, 2.2], psfsize_g=[1.0] * 5, psfsize_r=[1.2] * 5, psfsize_z=[1.7] * 5,
    )  # fmt: skip
    tractor = legacy.read_tractor(path)
    psf_radius = np.mean([f32(1.0), f32(1.2), f32(1.7)]) / 2
    np.testing.assert_array_equal(tractor["rhalf"], [psf_radius, f32(0.3), f32(0.7), f32(1.1), f32(1.3)])
    np.testing.assert_array_equal(tractor["sersic_n"], [np.nan, 1.0, 1.0, 4.0, f32(2.2)])  # not the file's 0s
    np.testing.assert_array_equal(tractor["e1"], [0.0, 0.0, f32(0.2), f32(-0.3), f32(0.4)])
    np.testing.assert_array_equal(tractor["e2"], [0.0, 0.0, f32(0.1), f32(0.25), f32(-0.15)])
    np.testing.assert_array_equal(tractor_half_light_radius(tractor), tractor["rhalf"])
    # The PSF radius averages the bands read.
    z_only = legacy.read_tractor(path, bands=("z",))
    assert z_only["rhalf"].iloc[0] == f32(1.7) / 2


def test_dr8_canonical_shapes_follow_the_dr5_rules(tmp_path: Path) -> None:
    tractor = legacy.read_tractor(
        write_tractor_catalog(tmp_path / "t.fits", "dr8", ["PSF", "REX", "EXP", "DEV", "COMP"])
    )
    exp_r, dev_r, fracdev = (f32(DR8_SHAPES[name]) for name in ("shapeexp_r", "shapedev_r", "fracdev"))
    np.testing.assert_array_equal(
        tractor["rhalf"], [f32(1.2) / 2, exp_r, exp_r, dev_r, fracdev * dev_r + (1 - fracdev) * exp_r]
    )
    np.testing.assert_array_equal(tractor["sersic_n"], [np.nan, 1.0, 1.0, 4.0, np.nan])
    exp_e1, dev_e1 = f32(DR8_SHAPES["shapeexp_e1"]), f32(DR8_SHAPES["shapedev_e1"])
    np.testing.assert_array_equal(tractor["e1"], [0.0, exp_e1, exp_e1, dev_e1, np.nan])


def _old_dr5_shapes(catalog: pd.DataFrame, bands: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The DR5 values realfake computed before it read other releases (survey.selection.tractor_half_light_radius
    and cutouts.sources.real_source_table of that version), written out again to compare with."""
    source_type = np.asarray(catalog["type"]).astype(str)
    psf_radius = np.mean([np.asarray(catalog[f"psfsize_{band}"], dtype=np.float64) for band in bands], axis=0) / 2
    exp_radius = np.asarray(catalog["shapeexp_r"], dtype=np.float64)
    dev_radius = np.asarray(catalog["shapedev_r"], dtype=np.float64)
    fracdev = np.asarray(catalog["fracdev"], dtype=np.float64)
    is_exp, is_dev, is_psf = np.isin(source_type, ["REX", "EXP", "SIMP"]), source_type == "DEV", source_type == "PSF"
    radius = np.full(len(catalog), np.nan)
    radius[is_psf], radius[is_exp], radius[is_dev] = psf_radius[is_psf], exp_radius[is_exp], dev_radius[is_dev]
    is_comp = source_type == "COMP"
    radius[is_comp] = (fracdev * dev_radius + (1 - fracdev) * exp_radius)[is_comp]
    shapes = {"rhalf": radius, "sersic_n": np.where(is_exp, 1.0, np.where(is_dev, 4.0, np.nan))}
    for component in ("e1", "e2"):
        values = np.full(len(catalog), np.nan)
        values[is_exp] = np.asarray(catalog[f"shapeexp_{component}"], dtype=np.float64)[is_exp]
        values[is_dev] = np.asarray(catalog[f"shapedev_{component}"], dtype=np.float64)[is_dev]
        values[is_psf] = 0.0
        shapes[component] = values
    return shapes


def test_dr5_catalogs_keep_their_old_values(tmp_path: Path, realdata: Path) -> None:
    rng = np.random.default_rng(4)
    types = ["PSF", "REX", "EXP", "DEV", "COMP", "SIMP"] * 5
    columns = tractor_columns(
        "dr8", types, release=[5000] * 30, psfsize_g=rng.uniform(0.8, 2, 30), psfsize_z=rng.uniform(0.8, 2, 30),
        **{name: rng.uniform(0, 1.5, 30) for name in DR8_SHAPES},
    )  # fmt: skip
    del columns["maskbits"]
    tractor = legacy.read_tractor(_write(tmp_path / "dr5.fits", columns))
    assert (tractor.attrs["release"], tractor.attrs["dropped_dup"]) == ("dr5", 0)
    for name, values in _old_dr5_shapes(tractor, ("g", "r", "z")).items():
        np.testing.assert_array_equal(tractor[name], values, err_msg=name)

    genuine = obiwan.find_rsdirs(realdata / "obiwan_1238p245_dr5", OBIWAN_BRICK)[0].tractor_path
    for bands in (("z",), ("g", "r", "z")):
        tractor = legacy.read_tractor(genuine, bands=bands)
        assert (tractor.attrs["release"], tractor.attrs["schema"], len(tractor)) == ("dr5", "dr5", 2)
        for name, values in _old_dr5_shapes(tractor, bands).items():
            np.testing.assert_array_equal(tractor[name], values, err_msg=name)
    # Two PSFs, observed in z only: their radius is half the z FWHM, read with band z.
    psfsize_z = fits.getdata(genuine, 1)["psfsize_z"].astype(np.float64)
    np.testing.assert_array_equal(legacy.read_tractor(genuine, bands=("z",))["rhalf"], psfsize_z / 2)
    assert (tractor["e1"] == 0).all() and tractor["sersic_n"].isna().all()


# --------------------------------------------------------------------------- elg_padded on DR9


# Each row is an ELG but for what its name says, and is kept (True), cut (False) or dropped on reading (None).
ELG_ROWS = {
    "exp": ("EXP", {}, True),
    "rex": ("REX", {}, True),
    "psf": ("PSF", {}, True),  # rhalf = psfsize / 2 = 0.6
    "ser_low_index": ("SER", {"sersic": 1.5}, True),
    "ser_just_below": ("SER", {"sersic": 2.49}, True),
    "ser_at_limit": ("SER", {"sersic": 2.5}, False),  # nearer de Vaucouleurs
    "ser_bulge": ("SER", {"sersic": 4.0}, False),
    "dev": ("DEV", {}, False),  # a de Vaucouleurs profile
    "too_large": ("EXP", {"shape_r": 2.1}, False),
    "too_small": ("EXP", {"shape_r": 0.12}, False),
    "psf_too_small": ("PSF", {"psfsize_g": 0.2, "psfsize_r": 0.2, "psfsize_z": 0.2}, False),
    "not_primary": ("EXP", {"brick_primary": False}, False),
    "unobserved_g": ("EXP", {"nobs_g": 0}, False),
    "no_flux_ivar_z": ("EXP", {"flux_ivar_z": 0.0}, False),
    "negative_flux_r": ("EXP", {"flux_r": -1.0}, False),
    "outside_colour_box": ("EXP", {"flux_g": flux_of(24.4)}, False),  # g - r = 1.8
    "too_bright": ("EXP", {"flux_r": flux_of(20.3), "flux_g": flux_of(20.7), "flux_z": flux_of(19.7)}, False),
    "too_faint_z": ("EXP", {"flux_z": flux_of(23.1), "flux_r": flux_of(23.5), "flux_g": flux_of(23.9)}, False),
    "duplicate": ("DUP", {}, None),  # dropped on reading
}


def test_elg_padded_on_dr9_applies_each_restated_rule(tmp_path: Path) -> None:
    names = list(ELG_ROWS)
    columns = tractor_columns("dr9", [ELG_ROWS[name][0] for name in names])
    for row, name in enumerate(names):
        for column, value in ELG_ROWS[name][1].items():
            columns[column][1][row] = value
    tractor = legacy.read_tractor(_write(tmp_path / "tractor.fits", columns))
    kept = [name for name in names if ELG_ROWS[name][2] is not None]
    assert tractor.attrs["dropped_dup"] == 1 and len(tractor) == len(kept)
    selected = dict(zip(kept, select(tractor, "elg_padded")))
    assert selected == {name: ELG_ROWS[name][2] for name in kept}


def test_elg_padded_on_dr5_and_dr8_still_drops_comp_and_dev(tmp_path: Path) -> None:
    for release in ("dr5", "dr8"):
        columns = tractor_columns(
            "dr8", ["EXP", "REX", "PSF", "DEV", "COMP"], release=[5000 if release == "dr5" else 8000] * 5
        )
        tractor = legacy.read_tractor(_write(tmp_path / f"{release}.fits", columns))
        assert list(select(tractor, "elg_padded")) == [True, True, True, False, False], release


def test_elg_padded_of_a_table_never_read_from_a_file_computes_its_shapes() -> None:
    """The mock survey selects tables it made in memory, with DR5's columns and no canonical ones."""
    table = pd.DataFrame({
        "type": ["EXP", "COMP", "PSF"], "brick_primary": [True] * 3, "fracdev": [0.0, 0.5, 0.0],
        "shapeexp_r": [0.5, 0.5, 0.0], "shapedev_r": [0.0, 0.5, 0.0],
    })  # fmt: skip
    for band in "grz":
        table[f"flux_{band}"] = flux_of({"g": 23.0, "r": 22.6, "z": 22.0}[band])
        table[f"mw_transmission_{band}"], table[f"flux_ivar_{band}"], table[f"nobs_{band}"] = 0.9, 1.0, 1
        table[f"psfsize_{band}"] = [1.2, 1.2, 0.1]
    assert list(select(table, "elg_padded")) == [True, False, False]


@pytest.mark.parametrize("data_release", ["dr8", "dr9", "dr10"])
def test_psf_stars_keeps_covered_primary_point_sources_of_its_window(tmp_path: Path, data_release: str) -> None:
    types = ["PSF", "PSF", "PSF", "EXP", "DUP", "PSF", "PSF"]
    r_flux = [flux_of(22.0), flux_of(17.5), flux_of(23.2), flux_of(22.0), 0.0, flux_of(22.0), flux_of(22.0)]
    path = write_tractor_catalog(
        tmp_path / "tractor.fits",
        data_release,
        types,
        flux_r=r_flux,
        brick_primary=[True, True, True, True, True, False, True],
        nobs_z=[2, 2, 2, 2, 2, 2, 0],
    )
    tractor = legacy.read_tractor(path)
    # Kept: the primary PSF of r 22 covered in g, r, z; not one too bright, too faint, extended, DUP, secondary
    # or without z exposures.
    assert list(select(tractor, "psf_stars")) == [True, False, False, False, False, False]  # DUP rows are read away
    assert missing_selection_bands("psf_stars", ("g", "r")) == ["z"]


# --------------------------------------------------------------------------- selections as expressions


def test_an_expression_selects_over_the_catalogs_columns(tmp_path: Path) -> None:
    path = write_tractor_catalog(
        tmp_path / "tractor.fits", "dr9", ["PSF", "EXP", "DUP", "PSF"], brick_primary=[True, True, True, False]
    )
    tractor = legacy.read_tractor(path)
    assert list(select(tractor, "type == 'PSF'")) == [True, False, True]
    assert list(select(tractor, "brick_primary & (type != 'EXP')")) == [True, False, False]
    assert list(select(tractor, "(rhalf > 0.55) | (sersic_n == 1)")) == [True, True, True]  # canonical columns
    assert list(select(tractor, "mag_dered_g < 23.5 and not brick_primary")) == [False, False, True]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("type ==", "cannot be evaluated on"),
        ("maskbit == 0", "names a column that .* lacks"),
        ("flux_g", "does not give one boolean per row of .*: it gives float32 values"),
        ("True", "does not give one boolean per row of .*: it gives the single value True"),
        ("flux_g.sum() > 0", "does not give one boolean per row"),
    ],
)
def test_a_bad_expression_is_refused_naming_the_expression_and_the_file(tmp_path, expression, message) -> None:
    path = write_tractor_catalog(tmp_path / "tractor.fits", "dr9", ["PSF", "EXP"])
    tractor = legacy.read_tractor(path)
    with pytest.raises(RealfakeError, match=message) as error:
        select(tractor, expression)
    assert f"selection expression {expression!r}" in str(error.value) and str(path) in str(error.value)


def test_a_selection_is_checked_by_syntax_when_the_settings_are_made() -> None:
    check_selection("elg_padded")
    check_selection("brick_primary & (type == 'PSF')")
    for bad in ("type ==", "", "elg padded", "x = 1"):
        with pytest.raises(RealfakeError, match="is neither a named selection .* nor an expression"):
            check_selection(bad)
    settings = CutoutSettings(kind="real", dr5_dir=Path("."), bands=("z",), selection="type == 'PSF'")
    assert settings.selection == settings.applied_selection == "type == 'PSF'"
    assert missing_selection_bands("type == 'PSF'", ("z",)) == []
    assert missing_selection_bands("elg_padded", ("z",)) == ["g", "r"]
    with pytest.raises(RealfakeError, match="selection 'type ==' is neither"):
        CutoutSettings(kind="real", dr5_dir=Path("."), selection="type ==")


def test_dr9_shapes_from_the_fixture_defaults(tmp_path: Path) -> None:
    """The fixture's DR9 defaults reach the canonical columns (the other tests rely on them)."""
    tractor = legacy.read_tractor(write_tractor_catalog(tmp_path / "t.fits", "dr9", ["EXP"]))
    assert tractor["rhalf"].iloc[0] == f32(DR9_SHAPES["shape_r"]) and tractor["e2"].iloc[0] == f32(
        DR9_SHAPES["shape_e2"]
    )
