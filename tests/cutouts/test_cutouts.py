"""Tests for the cutouts stage: one code path for real and fake sources, file format, edges, bad input, batch mode.

Most tests build a tiny survey in tmp_path (brick 1238p245, 128 x 128 pixels,
losslessly compressed coadds so pixel values can be compared exactly); some use
a small mock survey, and one the real obiwan files in ../shared/realdata.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.io import fits
from fixtures import REPOSITORY
from fixtures.tinysurvey import (
    BRICK,
    HALF,
    OTHER_BRICK,
    SIZE,
    TinySurvey,
    counts,
    cutouts_cli,
    load,
    write_brick_table,
    write_table,
)
from fixtures.tractor_releases import write_tractor_catalog

from realfake import __version__
from realfake.cutouts import (
    CutoutSettings,
    catalog_columns,
    expected_attributes,
    input_files,
    run_cutouts,
)
from realfake.formats.cutouts import cutouts_file_is_complete
from realfake.mock.layout import mock_brick_names, mock_rsdir_names
from realfake.mock.render import render_sources
from realfake.mock.settings import MockSettings
from realfake.mock.survey import run_mock_survey
from realfake.paths import cutouts_path
from realfake.survey import legacy
from realfake.survey.obiwan import find_rsdirs, read_simcat

BIN = Path(sys.executable).parent


@pytest.fixture
def tiny(tmp_path: Path) -> TinySurvey:
    return TinySurvey(tmp_path / "survey")


def _render(x: float, y: float, flux: float) -> np.ndarray:
    """A Sersic n=1 galaxy (rhalf 0.6", e1 0.2) convolved with a 1.2" Moffat, float64 (SIZE, SIZE)."""
    source = pd.DataFrame({
        "x": [x], "y": [y], "sersic_n": [1.0], "rhalf": [0.6], "e1": [0.2], "e2": [-0.1], "fracdev": [0.0],
        "rhalf_dev": [0.0], "e1_dev": [0.0], "e2_dev": [0.0],
    })  # fmt: skip
    return render_sources((SIZE, SIZE), source, np.array([flux]), psf_fwhm=1.2)


# --------------------------------------------------------------------------- one code path


def test_a_galaxy_listed_as_real_and_as_fake_gives_identical_stamps(tiny, tmp_path, capsys):
    x, y = 60.3, 70.7  # off-centre within its pixel in both directions
    planes = {band: (_render(x, y, flux), np.full((SIZE, SIZE), 400.0)) for band, flux in zip("grz", [5.0, 8.0, 12.0])}
    tiny.write_coadd(tiny.dr5_coadd_dir(), planes)
    tiny.write_coadd(tiny.rsdir_coadd_dir("rs0"), planes)
    # bx, by are written 1-indexed and simcat x, y 0-indexed (the opposite of the real conventions):
    # a cutter that used either instead of ra, dec would shift one of the stamps by a pixel.
    tiny.write_tractor(x, y)
    tiny.write_simcat("rs0", x, y, ids=[7])

    assert cutouts_cli(tiny.arguments("real", tmp_path / "real.h5", "--selection", "all_primary"), capsys)[0] == 0
    assert cutouts_cli(tiny.arguments("sim", tmp_path / "sim.h5"), capsys)[0] == 0
    real_stamps, real_catalog, _ = load(tmp_path / "real.h5")
    sim_stamps, sim_catalog, _ = load(tmp_path / "sim.h5")

    assert real_stamps.shape == sim_stamps.shape == (1, 64, 64, 6)
    assert np.array_equal(real_stamps, sim_stamps)
    for column in [
        "x",
        "y",
        "centre_x",
        "centre_y",
        "offset_x",
        "offset_y",
        "mag_dered_g",
        "mag_dered_r",
        "mag_dered_z",
    ]:
        assert real_catalog[column].iloc[0] == pytest.approx(sim_catalog[column].iloc[0], abs=1e-9), column
    assert (real_catalog["centre_x"].iloc[0], real_catalog["centre_y"].iloc[0]) == (60, 71)
    assert real_catalog["offset_x"].iloc[0] == pytest.approx(0.3, abs=1e-6)
    assert real_catalog["offset_y"].iloc[0] == pytest.approx(-0.3, abs=1e-6)
    peak = np.unravel_index(np.argmax(real_stamps[0, :, :, 2]), (64, 64))
    assert peak == (HALF, HALF)
    # The same magnitude definition: 22.5 - 2.5 log10(10 / 0.9) for both.
    assert real_catalog["mag_dered_z"].iloc[0] == pytest.approx(22.5 - 2.5 * np.log10(10 / 0.9))
    assert (real_catalog["id"].iloc[0], sim_catalog["id"].iloc[0]) == (10, 7)
    assert (real_catalog["rsdir"].iloc[0], sim_catalog["rsdir"].iloc[0]) == ("", "rs0")


def test_stamp_is_the_window_centred_on_the_nearest_pixel_rows_y_columns_x(tiny, tmp_path, capsys):
    rows, columns = np.mgrid[0:SIZE, 0:SIZE]
    ramp = 1000.0 * rows + columns  # value names the pixel: 1000 y + x
    planes = tiny.constant_planes()
    planes["g"] = (ramp, planes["g"][1])
    tiny.write_coadd(tiny.dr5_coadd_dir(), planes)
    # Not exactly on a half pixel: ra, dec round trips move such a source by ~1e-9 px either way.
    x = np.array([50.45, 50.55, 50.51, 64.0, 70.2, 40.0])
    y = np.array([60.0, 61.55, 62.49, 63.51, 40.8, 75.45])
    tiny.write_tractor(x, y)

    status, _ = cutouts_cli(tiny.arguments("real", tmp_path / "out.h5", "--selection", "all_primary"), capsys)
    assert status == 0
    stamps, catalog, _ = load(tmp_path / "out.h5")
    np.testing.assert_allclose(catalog["x"], x, atol=1e-6)
    np.testing.assert_allclose(catalog["y"], y, atol=1e-6)
    expected_x = np.floor(x + 0.5).astype(int)
    expected_y = np.floor(y + 0.5).astype(int)
    assert list(catalog["centre_x"]) == list(expected_x) == [50, 51, 51, 64, 70, 40]
    assert list(catalog["centre_y"]) == list(expected_y) == [60, 62, 62, 64, 41, 75]
    assert ((catalog["offset_x"] >= -0.5) & (catalog["offset_x"] < 0.5)).all()
    assert ((catalog["offset_y"] >= -0.5) & (catalog["offset_y"] < 0.5)).all()
    np.testing.assert_allclose(catalog["offset_x"], x - expected_x, atol=1e-6)
    offsets = np.arange(-HALF, HALF)
    for index in range(len(x)):
        window = 1000.0 * (expected_y[index] + offsets)[:, None] + (expected_x[index] + offsets)[None, :]
        assert np.array_equal(stamps[index, :, :, 0], window)
        assert stamps[index, HALF, HALF, 0] == 1000 * expected_y[index] + expected_x[index]


def test_channels_are_the_bands_in_order_then_their_inverse_variances(tiny, tmp_path, capsys):
    tiny.write_coadd(tiny.dr5_coadd_dir(), tiny.constant_planes())  # g 1, r 2, z 3; ivar 10, 20, 30
    tiny.write_tractor([64.0], [64.0])

    out = tmp_path / "grz.h5"
    assert cutouts_cli(tiny.arguments("real", out, "--selection", "all_primary"), capsys)[0] == 0
    stamps, _, attributes = load(out)
    assert stamps.dtype == np.float32
    assert attributes["channels"] == ["g", "r", "z", "ivar_g", "ivar_r", "ivar_z"]
    assert attributes["bands"] == ["g", "r", "z"]
    for channel, value in enumerate([1, 2, 3, 10, 20, 30]):
        assert np.all(stamps[..., channel] == value)

    arguments = tiny.arguments("real", tmp_path / "zg.h5", "--selection", "all_primary")
    arguments[arguments.index("--bands") + 1] = "zg"
    assert cutouts_cli(arguments, capsys)[0] == 0
    stamps, _, attributes = load(tmp_path / "zg.h5")
    assert attributes["channels"] == ["z", "g", "ivar_z", "ivar_g"]
    for channel, value in enumerate([3, 1, 30, 10]):
        assert np.all(stamps[..., channel] == value)


def test_file_attributes_record_what_was_made_and_from_what(tiny, tmp_path, capsys):
    tiny.write_coadd(tiny.dr5_coadd_dir(), tiny.constant_planes())
    tiny.write_tractor([64.0, 70.0], [64.0, 60.0], brick_primary=[True, False])
    out = tmp_path / "out.h5"
    status, stderr = cutouts_cli(tiny.arguments("real", out, "--selection", "all_primary"), capsys)
    assert status == 0
    assert "1 stamps of 1 selected (2 read" in stderr
    _, catalog, attributes = load(out)
    assert list(catalog.columns) == catalog_columns(("g", "r", "z"))
    assert attributes["kind"] == "real" and attributes["brickname"] == BRICK
    assert attributes["selection"] == "all_primary" and not attributes["select_fakes"] and not attributes["pad_edges"]
    assert attributes["stamp_size"] == 64
    assert "origin 0" in attributes["pixel_convention"] and "floor(coordinate + 0.5)" in attributes["pixel_convention"]
    assert attributes["package_version"] == __version__
    assert str(tiny.tractor_path()) in attributes["inputs"]
    assert str(tiny.dr5 / "survey-bricks.fits") in attributes["inputs"]
    assert sum("-invvar-z.fits.fz" in path for path in attributes["inputs"]) == 1
    assert counts(attributes) == {
        "sources_read": 2, "sources_selected": 1, "sources_written": 1, "dropped_off_image": 0,
        "dropped_no_coverage": 0, "dropped_near_fake": 0,
    }  # fmt: skip
    assert (attributes["release"], attributes["dropped_dup"]) == ("dr5", 0)
    with h5py.File(out) as cutouts:
        assert "dereddened" in cutouts["catalog/mag_dered_g"].attrs["description"]


# --------------------------------------------------------------------------- edges and coverage


def test_stamps_leaving_the_image_are_dropped_or_padded(tiny, tmp_path, capsys):
    rows, columns = np.mgrid[0:SIZE, 0:SIZE]
    planes = {band: (1000.0 * rows + columns + 1, np.full((SIZE, SIZE), 5.0)) for band in tiny.bands}
    tiny.write_coadd(tiny.dr5_coadd_dir(), planes)
    # inside; stamp crosses the left edge; exactly touching the bottom-right; centre off the image.
    x = np.array([64.0, 10.2, SIZE - 32.0, -3.0])
    y = np.array([64.0, 50.0, SIZE - 32.0, 64.0])
    tiny.write_tractor(x, y)

    dropped = tmp_path / "dropped.h5"
    assert cutouts_cli(tiny.arguments("real", dropped, "--selection", "all_primary"), capsys)[0] == 0
    stamps, catalog, attributes = load(dropped)
    assert list(catalog["id"]) == [10, 12]
    assert counts(attributes)["dropped_off_image"] == 2 and counts(attributes)["sources_written"] == 2
    assert stamps[1, -1, -1, 0] == 1000 * (SIZE - 1) + SIZE - 1 + 1  # the last image pixel, in the stamp

    padded = tmp_path / "padded.h5"
    assert cutouts_cli(tiny.arguments("real", padded, "--selection", "all_primary", "--pad-edges"), capsys)[0] == 0
    stamps, catalog, attributes = load(padded)
    assert list(catalog["id"]) == [10, 11, 12]
    assert counts(attributes)["dropped_off_image"] == 1  # the source whose centre is off the image
    assert attributes["pad_edges"]
    edge = stamps[1]  # centre (10, 50): stamp columns -22 .. 41, so stamp columns 0..21 are off the image
    assert np.all(edge[:, :22, :] == 0)  # image 0 and inverse variance 0 in every channel
    expected = 1000.0 * (50 + np.arange(-HALF, HALF))[:, None] + np.arange(0, 42)[None, :] + 1
    assert np.array_equal(edge[:, 22:, 0], expected)
    assert np.all(edge[:, 22:, 3:] == 5.0)


def test_no_coverage_at_the_centre_in_any_band_drops_the_source(tiny, tmp_path, capsys):
    planes = tiny.constant_planes()
    inverse_variance_r = planes["r"][1].copy()
    inverse_variance_r[40, 40] = 0.0  # the centre pixel of source 0, in r only
    inverse_variance_r[90, 95] = 0.0  # inside source 1's stamp but not at its centre
    planes["r"] = (planes["r"][0], inverse_variance_r)
    image_z = planes["z"][0].copy()
    image_z[100, 100] = np.nan  # inside source 1's stamp
    planes["z"] = (image_z, planes["z"][1])
    tiny.write_coadd(tiny.dr5_coadd_dir(), planes)
    tiny.write_tractor([40.2, 90.0], [39.9, 90.0])

    out = tmp_path / "out.h5"
    assert cutouts_cli(tiny.arguments("real", out, "--selection", "all_primary"), capsys)[0] == 0
    stamps, catalog, attributes = load(out)
    assert list(catalog["id"]) == [11]
    assert counts(attributes)["dropped_no_coverage"] == 1 and counts(attributes)["dropped_off_image"] == 0
    stamp = stamps[0]  # centre (90, 90): image pixel (row, column) is stamp (row - 58, column - 58)
    assert stamp[90 - 58, 95 - 58, 4] == 0.0 and stamp[HALF, HALF, 4] == 20.0
    assert stamp[100 - 58, 100 - 58, 2] == 0.0 and stamp[100 - 58, 100 - 58, 5] == 0.0  # NaN -> image 0, ivar 0
    assert np.isfinite(stamps).all()


def test_a_brick_with_no_selected_source_gives_a_valid_empty_file(tiny, tmp_path, capsys):
    tiny.write_coadd(tiny.dr5_coadd_dir(), tiny.constant_planes())
    tiny.write_tractor([64.0, 70.0], [64.0, 60.0])  # 10 nmgy PSFs: far too bright for elg_padded
    out = tmp_path / "empty.h5"
    assert cutouts_cli(tiny.arguments("real", out), capsys)[0] == 0
    stamps, catalog, attributes = load(out)
    assert stamps.shape == (0, 64, 64, 6) and stamps.dtype == np.float32
    assert len(catalog) == 0 and list(catalog.columns) == catalog_columns(("g", "r", "z"))
    assert attributes["selection"] == "elg_padded"
    assert counts(attributes) == {
        "sources_read": 2, "sources_selected": 0, "sources_written": 0, "dropped_off_image": 0,
        "dropped_no_coverage": 0, "dropped_near_fake": 0,
    }  # fmt: skip
    settings = CutoutSettings(kind="real", dr5_dir=tiny.dr5)
    assert cutouts_file_is_complete(out, expected_attributes(settings, BRICK), catalog_columns(settings.bands))


# --------------------------------------------------------------------------- fakes


def test_fakes_come_from_every_rsdir_each_cut_from_its_own_coadd(tiny, tmp_path, capsys):
    tiny.write_coadd(tiny.rsdir_coadd_dir("rs0"), tiny.constant_planes({"g": 1.0}))
    tiny.write_coadd(tiny.rsdir_coadd_dir("rs2"), tiny.constant_planes({"g": 2.0}))
    tiny.write_coadd(tiny.rsdir_coadd_dir("more_rs0"), tiny.constant_planes({"g": 3.0}))
    tiny.write_simcat("rs0", [50.0, 60.0], [50.0, 60.0], ids=[0, 1])
    tiny.write_simcat("rs2", [70.0, 75.0], [70.0, 75.0], ids=[2, 3])
    tiny.write_simcat("more_rs0", [64.0], [64.0], ids=[4])

    out = tmp_path / "sim.h5"
    assert cutouts_cli(tiny.arguments("sim", out), capsys)[0] == 0
    stamps, catalog, attributes = load(out)
    assert list(catalog["rsdir"]) == ["rs0", "rs0", "rs2", "rs2", "more_rs0"]
    assert list(catalog["id"]) == [0, 1, 2, 3, 4]
    assert [float(value) for value in stamps[:, HALF, HALF, 0]] == [1, 1, 2, 2, 3]
    assert attributes["rsdirs"] == ["rs0", "rs2", "more_rs0"]
    assert attributes["selection"] == "none" and not attributes["select_fakes"]
    assert attributes["mw_transmission_source"] == ["rs0: simcat", "rs2: simcat", "more_rs0: simcat"]
    assert (attributes["release"], attributes["dropped_dup"]) == ("", 0)  # no rs dir tractor catalog was read
    assert counts(attributes)["sources_read"] == counts(attributes)["sources_written"] == 5
    assert list(catalog["type"]) == ["EXP"] * 5
    np.testing.assert_allclose(catalog["size"], 0.5)


def test_real_source_rsdir_cuts_each_real_once_from_the_first_rsdir_with_no_fake_near_it(tiny, tmp_path, capsys):
    # DR5's own coadd is absent: with --real-source rsdir the reals come from the rs dirs' images only.
    tiny.write_coadd(tiny.rsdir_coadd_dir("rs0"), tiny.constant_planes({"g": 1.0}))
    tiny.write_coadd(tiny.rsdir_coadd_dir("rs2"), tiny.constant_planes({"g": 2.0}))
    # Reals A, B, C, D (objids 10-13). rs0's fake is within 32 px (x and y) of A and C; rs2's of B and C.
    tiny.write_tractor([40.0, 85.0, 61.0, 88.0], [40.0, 85.0, 61.0, 40.0])
    tiny.write_simcat("rs0", [50.0], [40.0], ids=[0])
    tiny.write_simcat("rs2", [92.0], [92.0], ids=[1])

    out = tmp_path / "real.h5"
    arguments = tiny.arguments("real", out, "--selection", "all_primary", "--real-source", "rsdir")
    status, stderr = cutouts_cli(arguments, capsys)
    assert status == 0, stderr
    assert "3 stamps of 4 selected (4 read; dropped 0 off_image, 0 no_coverage, 1 near_fake)" in stderr
    stamps, catalog, attributes = load(out)
    assert list(catalog["id"]) == [11, 13, 10]  # B and D from rs0, then A from rs2; C has a fake near it in both
    assert list(catalog["rsdir"]) == ["rs0", "rs0", "rs2"]
    assert [float(value) for value in stamps[:, HALF, HALF, 0]] == [1, 1, 2]
    assert attributes["real_source"] == "rsdir" and attributes["real_exclusion_radius"] == 32
    assert attributes["rsdirs"] == ["rs0", "rs2"] and list(attributes["reals_per_rsdir"]) == [2, 1]
    assert counts(attributes)["dropped_near_fake"] == 1
    assert str(tiny.simcat_path("rs2")) in attributes["inputs"]
    assert not any(str(tiny.dr5_coadd_dir()) in path for path in attributes["inputs"])
    settings = CutoutSettings(
        kind="real", dr5_dir=tiny.dr5, obiwan_dir=tiny.obiwan, selection="all_primary", real_source="rsdir"
    )
    assert sorted(input_files(settings, BRICK)) == sorted(attributes["inputs"])
    assert cutouts_file_is_complete(out, expected_attributes(settings, BRICK), catalog_columns(settings.bands))
    # A file cut from DR5 is not this one, and this one is not a DR5 file.
    dr5_settings = CutoutSettings(kind="real", dr5_dir=tiny.dr5, selection="all_primary")
    assert not cutouts_file_is_complete(out, expected_attributes(dr5_settings, BRICK), catalog_columns(("g", "r", "z")))

    # Without exclusion every real comes from the first rs dir.
    out = tmp_path / "radius0.h5"
    arguments = tiny.arguments(
        "real", out, "--selection", "all_primary", "--real-source", "rsdir", "--real-exclusion-radius", "0"
    )
    assert cutouts_cli(arguments, capsys)[0] == 0
    assert list(load(out)[1]["rsdir"]) == ["rs0"] * 4


def test_real_source_rsdir_needs_the_obiwan_tree(tiny, tmp_path, capsys):
    arguments = ["cutouts", "--kind", "real", "--brick", BRICK, "--out", str(tmp_path / "real.h5"),
                 "--dr5-dir", str(tiny.dr5), "--real-source", "rsdir"]  # fmt: skip
    status, stderr = cutouts_cli(arguments, capsys)
    assert status == 2
    assert stderr.strip().splitlines()[-1] == (
        "realfake cutouts: error: real cutouts with --real-source rsdir need the obiwan output tree (--obiwan-dir)"
    )
    assert not (tmp_path / "real.h5").exists()


def test_select_fakes_cuts_their_true_values_with_the_selection(tiny, tmp_path, capsys):
    tiny.write_coadd(tiny.rsdir_coadd_dir("rs0"), tiny.constant_planes())
    # Fake 0 in the ELG box (g 23.0, r 22.6, z 22.0 dereddened); fake 1 far too bright (10 nmgy, ~19.9 mag).
    fluxes = {band: [10 ** ((22.5 - mag) / 2.5) * 0.9, 10.0] for band, mag in zip("grz", [23.0, 22.6, 22.0])}
    tiny.write_simcat("rs0", [50.0, 70.0], [50.0, 70.0], gflux=fluxes["g"], rflux=fluxes["r"], zflux=fluxes["z"])

    assert cutouts_cli(tiny.arguments("sim", tmp_path / "all.h5"), capsys)[0] == 0
    assert len(load(tmp_path / "all.h5")[1]) == 2
    assert cutouts_cli(tiny.arguments("sim", tmp_path / "cut.h5", "--select-fakes"), capsys)[0] == 0
    _, catalog, attributes = load(tmp_path / "cut.h5")
    assert list(catalog["id"]) == [0]
    np.testing.assert_allclose(catalog[["mag_dered_g", "mag_dered_r", "mag_dered_z"]].iloc[0], [23.0, 22.6, 22.0])
    assert attributes["selection"] == "elg_padded" and attributes["select_fakes"]
    assert counts(attributes)["sources_read"] == 2 and counts(attributes)["sources_selected"] == 1


# --------------------------------------------------------------------------- other releases, selection expressions


def _write_dr9_tractor(tiny: TinySurvey, x, y, types: list[str], path: Path | None = None, **overrides) -> Path:
    """A DR9 tractor catalog (tests/fixtures/tractor_releases.py) of sources at 0-indexed pixels x, y of the tiny
    survey; each an ELG of elg_padded unless ``overrides`` say otherwise."""
    ra, dec = tiny.sky(x, y)
    positions = {"ra": ra, "dec": dec, "bx": np.asarray(x, dtype=np.float64), "by": np.asarray(y, dtype=np.float64)}
    return write_tractor_catalog(path or tiny.tractor_path(), "dr9", types, **{**positions, **overrides})


def _cutouts_arguments(**config) -> list[str]:
    """The flags the workflow passes for these cutouts config values: one shell word each after shlex.join
    (workflow/rules/arguments.smk), split again as the shell does."""
    from realfake.settings import command_line

    return shlex.split(shlex.join(command_line(CutoutSettings, config)))


def test_a_dr9_catalog_gives_its_sources_with_their_shapes_release_and_dropped_dups(tiny, tmp_path, capsys):
    tiny.write_coadd(tiny.dr5_coadd_dir(), tiny.constant_planes())
    # objid 0 PSF, 1 SER with a bulge-like index, 2 DUP (a Gaia star, no flux), 3 SER disk, 4 EXP.
    _write_dr9_tractor(
        tiny, [40.0, 50.0, 64.0, 75.0, 88.0], [64.0] * 5, ["PSF", "SER", "DUP", "SER", "EXP"],
        shape_r=[0.0, 0.8, 0.0, 0.7, 0.5], shape_e1=[0.0, 0.2, 0.0, -0.1, 0.1], sersic=[0.0, 3.0, 0.0, 1.8, 0.0],
    )  # fmt: skip

    out = tmp_path / "all.h5"
    assert cutouts_cli(tiny.arguments("real", out, "--selection", "all_primary"), capsys)[0] == 0
    _, catalog, attributes = load(out)
    assert (attributes["release"], attributes["dropped_dup"]) == ("dr9", 1)
    assert counts(attributes)["sources_read"] == 4 and list(catalog["id"]) == [0, 1, 3, 4]
    assert list(catalog["type"]) == ["PSF", "SER", "SER", "EXP"]
    np.testing.assert_allclose(catalog["size"], [0.6, 0.8, 0.7, 0.5], rtol=1e-6)  # PSF: psfsize / 2
    np.testing.assert_allclose(catalog["sersic_n"], [np.nan, 3.0, 1.8, 1.0], rtol=1e-6)
    np.testing.assert_allclose(catalog["e1"], [0.0, 0.2, -0.1, 0.1], rtol=1e-6)

    out = tmp_path / "elg.h5"
    assert cutouts_cli(tiny.arguments("real", out), capsys)[0] == 0
    assert list(load(out)[1]["id"]) == [0, 3, 4]  # the SER with n = 3 is nearer de Vaucouleurs than exponential

    out = tmp_path / "stars.h5"
    expression = "brick_primary & (type == 'PSF') | (sersic_n > 2.9)"
    arguments = [*tiny.arguments("real", out), *_cutouts_arguments(selection=expression)]
    assert cutouts_cli(arguments, capsys)[0] == 0
    _, catalog, attributes = load(out)
    assert list(catalog["id"]) == [0, 1] and attributes["selection"] == expression
    settings = CutoutSettings(kind="real", dr5_dir=tiny.dr5, selection=expression)
    assert cutouts_file_is_complete(out, expected_attributes(settings, BRICK), catalog_columns(settings.bands))


def test_a_bad_selection_expression_stops_the_brick_naming_it_and_the_catalog(tiny, tmp_path, capsys):
    tiny.write_coadd(tiny.dr5_coadd_dir(), tiny.constant_planes())
    _write_dr9_tractor(tiny, [30.0], [40.0], ["PSF"])
    out = tmp_path / "out.h5"
    status, stderr = cutouts_cli([*tiny.arguments("real", out), "--selection", "maskbit == 0"], capsys)
    assert status == 2 and not out.exists()
    assert "selection expression 'maskbit == 0' names a column" in stderr and str(tiny.tractor_path()) in stderr
    status, stderr = cutouts_cli([*tiny.arguments("real", out), "--selection", "type =="], capsys)
    assert status == 2 and "selection 'type ==' is neither a named selection" in stderr


def test_fakes_take_their_fits_and_release_from_a_dr9_rs_dir_catalog(tiny, tmp_path, capsys):
    tiny.write_coadd(tiny.rsdir_coadd_dir("rs0"), tiny.constant_planes())
    simcat = tiny.write_simcat("rs0", [40.0, 80.0], [40.0, 80.0], n=[1.0, 3.0])
    with fits.open(simcat, mode="update") as hdus:  # x, y 1-indexed, as obiwan writes them: the fits match
        hdus[1].data["x"] += 1
        hdus[1].data["y"] += 1
    rs_tractor = tiny.obiwan / "tractor" / "123" / BRICK / "rs0" / f"tractor-{BRICK}.fits"
    # A DUP exactly on fake 0 and its SER fit 0.5 pixel away: the DUP is no fit (it was dropped).
    _write_dr9_tractor(tiny, [40.0, 40.5, 80.0], [40.0, 40.0, 80.0], ["DUP", "SER", "EXP"], path=rs_tractor)

    out = tmp_path / "sim.h5"
    assert cutouts_cli(tiny.arguments("sim", out), capsys)[0] == 0
    _, catalog, attributes = load(out)
    assert (attributes["release"], attributes["dropped_dup"]) == ("dr9", 1)
    assert list(catalog["measured_type"]) == ["SER", "EXP"]
    np.testing.assert_allclose(catalog["measured_size"], 0.5, rtol=1e-6)

    out = tmp_path / "cut.h5"
    arguments = [*tiny.arguments("sim", out), "--select-fakes", "--selection", "(sersic_n < 2) & (rhalf > 0.4)"]
    assert cutouts_cli(arguments, capsys)[0] == 0
    assert list(load(out)[1]["id"]) == [0]
    arguments = [*tiny.arguments("sim", out), "--select-fakes", "--selection", "maskbits == 0"]
    status, stderr = cutouts_cli(arguments, capsys)
    assert status == 2 and "'maskbits == 0'" in stderr and str(tiny.simcat_path("rs0")) in stderr


def _write_older_simcat(tiny: TinySurvey, rsdir: str) -> None:
    ra, dec = tiny.sky([64.0], [64.0])
    columns = {
        "id": ("J", [5]), "seed": ("J", [1]), "ra": ("D", ra), "dec": ("D", dec), "x": ("E", [65.0]),
        "y": ("E", [65.0]), "gflux": ("E", [2.0]), "rflux": ("E", [2.0]), "zflux": ("E", [2.0]),
        "sersicn": ("E", [4.0]), "rhalf": ("E", [0.8]), "ba": ("E", [0.5]), "phi": ("E", [0.0]),
    }  # fmt: skip
    write_table(tiny.simcat_path(rsdir), columns)


def test_an_older_simcat_takes_the_median_transmission_of_a_tractor_catalog(tiny, tmp_path, capsys):
    tiny.write_coadd(tiny.rsdir_coadd_dir("rs0"), tiny.constant_planes())
    _write_older_simcat(tiny, "rs0")
    rs_tractor = tiny.obiwan / "tractor" / "123" / BRICK / "rs0" / f"tractor-{BRICK}.fits"
    transmission = np.array([0.5, 0.8, 0.9])
    tiny.write_tractor([10.0, 20.0, 30.0], [10.0, 20.0, 30.0], path=rs_tractor, mw_transmission_z=transmission)
    tiny.write_tractor([10.0], [10.0], mw_transmission_z=[0.25])  # the DR5 brick's

    out = tmp_path / "rs.h5"
    assert cutouts_cli(tiny.arguments("sim", out), capsys)[0] == 0
    _, catalog, attributes = load(out)
    assert attributes["mw_transmission_source"] == [f"rs0: median of {rs_tractor}"]
    assert str(rs_tractor) in attributes["inputs"]
    assert catalog["mw_transmission_z"].iloc[0] == pytest.approx(0.8)
    assert catalog["mag_dered_z"].iloc[0] == pytest.approx(22.5 - 2.5 * np.log10(2.0 / 0.8), abs=1e-6)
    assert (catalog["type"].iloc[0], catalog["sersic_n"].iloc[0]) == ("DEV", 4.0)
    assert catalog["e1"].iloc[0] == pytest.approx(1 / 3)

    rs_tractor.unlink()
    out = tmp_path / "dr5.h5"
    assert cutouts_cli(tiny.arguments("sim", out), capsys)[0] == 0
    _, catalog, attributes = load(out)
    assert attributes["mw_transmission_source"] == [f"rs0: median of {tiny.tractor_path()}"]
    assert catalog["mw_transmission_z"].iloc[0] == pytest.approx(0.25)

    tiny.tractor_path().unlink()
    status, stderr = cutouts_cli(tiny.arguments("sim", tmp_path / "none.h5"), capsys)
    assert status == 2 and "has no Milky Way transmission" in stderr and str(tiny.simcat_path("rs0")) in stderr
    assert not (tmp_path / "none.h5").exists()


# --------------------------------------------------------------------------- settings and crashes


def test_bad_settings_are_one_line_errors(tiny, tmp_path, capsys):
    status, stderr = cutouts_cli(tiny.arguments("real", tmp_path / "out.h5", "--bands", "gq"), capsys)
    assert status == 2 and "unknown band(s) q" in stderr
    arguments = tiny.arguments("sim", tmp_path / "out.h5")
    del arguments[arguments.index("--obiwan-dir") : arguments.index("--obiwan-dir") + 2]
    status, stderr = cutouts_cli(arguments, capsys)
    assert status == 2 and "--obiwan-dir" in stderr
    assert not (tmp_path / "out.h5").exists()


def test_a_crash_while_writing_leaves_no_file(tiny, tmp_path, monkeypatch):
    tiny.write_coadd(tiny.dr5_coadd_dir(), tiny.constant_planes())
    tiny.write_tractor([64.0], [64.0])

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(h5py.Group, "create_group", crash)
    out = tmp_path / "out" / "out.h5"
    with pytest.raises(RuntimeError, match="disk full"):
        run_cutouts(CutoutSettings(kind="real", dr5_dir=tiny.dr5, selection="all_primary"), BRICK, out)
    assert list(out.parent.iterdir()) == []


def test_only_complete_files_made_with_the_same_settings_are_trusted(tiny, tmp_path):
    tiny.write_coadd(tiny.dr5_coadd_dir(), tiny.constant_planes())
    tiny.write_tractor([64.0, 70.0], [64.0, 70.0])
    settings = CutoutSettings(kind="real", dr5_dir=tiny.dr5, selection="all_primary")
    out = tmp_path / "out.h5"
    run_cutouts(settings, BRICK, out)
    columns = catalog_columns(settings.bands)
    assert cutouts_file_is_complete(out, expected_attributes(settings, BRICK), columns)
    other = CutoutSettings(kind="real", dr5_dir=tiny.dr5, selection="elg_padded")
    assert not cutouts_file_is_complete(out, expected_attributes(other, BRICK), columns)
    assert not cutouts_file_is_complete(out, expected_attributes(settings, OTHER_BRICK), columns)
    with h5py.File(out, "a") as cutouts:
        cutouts.attrs["sources_written"] = 3  # counts no longer match the stamps
    assert not cutouts_file_is_complete(out, expected_attributes(settings, BRICK), columns)
    run_cutouts(settings, BRICK, out)
    out.write_bytes(out.read_bytes()[:2000])
    assert not cutouts_file_is_complete(out, expected_attributes(settings, BRICK), columns)
    assert not cutouts_file_is_complete(tmp_path / "absent.h5", expected_attributes(settings, BRICK), columns)


# --------------------------------------------------------------------------- real obiwan files


@pytest.fixture
def realdata_trees(realdata: Path, tmp_path: Path) -> tuple[Path, Path]:
    """../shared/realdata/obiwan_1238p245_dr5 arranged as a DR5 tree (links to rs0's files) and an obiwan tree."""
    obiwan = realdata / "obiwan_1238p245_dr5"
    rs0 = obiwan / "elg" / "123" / BRICK / "rs0"
    dr5 = tmp_path / "dr5"
    coadd_dir = dr5 / "coadd" / "123" / BRICK
    coadd_dir.mkdir(parents=True)
    for kind in ("image", "invvar"):
        name = f"legacysurvey-{BRICK}-{kind}-z.fits.fz"
        (coadd_dir / name).symlink_to(rs0 / "coadd" / name)
    (dr5 / "tractor" / "123").mkdir(parents=True)
    (dr5 / "tractor" / "123" / f"tractor-{BRICK}.fits").symlink_to(rs0 / "tractor" / f"tractor-{BRICK}.fits")
    header = fits.getheader(rs0 / "coadd" / f"legacysurvey-{BRICK}-image-z.fits.fz", 1)
    row = {
        "brickname": header["BRICKNAM"], "brickid": header["BRICKID"], "ra": header["BRICKRA"],
        "dec": header["BRICKDEC"], "ra1": header["RAMIN"], "ra2": header["RAMAX"], "dec1": header["DECMIN"],
        "dec2": header["DECMAX"],
    }  # fmt: skip
    write_brick_table(dr5, [row])
    return dr5, obiwan


def test_real_obiwan_files_give_two_centred_real_stamps_and_no_fakes(realdata_trees, tmp_path, capsys):
    dr5, obiwan = realdata_trees
    common = ["--brick", BRICK, "--bands", "z", "--dr5-dir", str(dr5), "--obiwan-dir", str(obiwan),
              "--selection", "all_primary"]  # fmt: skip

    assert cutouts_cli(["cutouts", "--kind", "real", "--out", str(tmp_path / "real.h5"), *common], capsys)[0] == 0
    stamps, catalog, attributes = load(tmp_path / "real.h5")
    assert stamps.shape == (2, 64, 64, 2)
    assert list(catalog["id"]) == [0, 1] and list(catalog["type"]) == ["PSF", "PSF"]
    tractor = legacy.read_tractor(dr5 / "tractor" / "123" / f"tractor-{BRICK}.fits", bands=("z",))
    np.testing.assert_allclose(catalog["x"], tractor["bx"], atol=0.01)  # the WCS agrees with legacypipe's bx, by
    np.testing.assert_allclose(catalog["y"], tractor["by"], atol=0.01)
    for stamp in stamps:
        peak = np.array(np.unravel_index(np.argmax(stamp[:, :, 0]), (64, 64)))
        assert np.abs(peak - HALF).max() <= 1
        assert 600 < stamp[HALF, HALF, 1] < 1000  # invvar ~800 at the centre
    assert counts(attributes) == {
        "sources_read": 2, "sources_selected": 2, "sources_written": 2, "dropped_off_image": 0,
        "dropped_no_coverage": 0, "dropped_near_fake": 0,
    }  # fmt: skip

    assert cutouts_cli(["cutouts", "--kind", "sim", "--out", str(tmp_path / "sim.h5"), *common], capsys)[0] == 0
    stamps, catalog, attributes = load(tmp_path / "sim.h5")
    assert stamps.shape == (0, 64, 64, 2) and len(catalog) == 0
    assert counts(attributes) == {
        "sources_read": 2, "sources_selected": 2, "sources_written": 0, "dropped_off_image": 1,
        "dropped_no_coverage": 1, "dropped_near_fake": 0,
    }  # fmt: skip
    rs0_tractor = obiwan / "elg" / "123" / BRICK / "rs0" / "tractor" / f"tractor-{BRICK}.fits"
    assert attributes["mw_transmission_source"] == [f"rs0: median of {rs0_tractor}"]


def test_real_obiwan_files_without_the_g_band_name_the_missing_file(realdata_trees, tmp_path, capsys):
    dr5, obiwan = realdata_trees
    out = tmp_path / "real.h5"
    status, stderr = cutouts_cli(
        [
            "cutouts",
            "--kind",
            "real",
            "--brick",
            BRICK,
            "--out",
            str(out),
            "--bands",
            "grz",
            "--dr5-dir",
            str(dr5),
            "--obiwan-dir",
            str(obiwan),
            "--selection",
            "all_primary",
        ],  # fmt: skip
        capsys,
    )
    assert status == 2 and "legacysurvey-1238p245-image-g.fits.fz" in stderr
    assert not out.exists()


# --------------------------------------------------------------------------- mock survey end to end

MOCK_SIZE = 384


@pytest.fixture(scope="module")
def mock_survey(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mock")
    run_mock_survey(MockSettings(out=root, bricks=1, size=MOCK_SIZE, seed=3, rsdirs=4, fakes_per_rsdir=30))
    return root


def test_fakes_carry_their_rs_dir_fit_and_reals_their_own_values(mock_survey, tmp_path):
    """Both classes get measured_* columns: a real source its own tractor values, a fake those of the source
    at its position in its rs dir's tractor catalog (legacypipe's re-fit); without that catalog, none."""
    real_settings = CutoutSettings(kind="real", dr5_dir=mock_survey / "dr5", selection="all_primary")
    run_cutouts(real_settings, BRICK, tmp_path / "real.h5")
    _, real, _ = load(tmp_path / "real.h5")
    assert len(real) > 10 and real["measured"].all()
    for column in ("mag_dered_g", "mag_dered_z", "size", "type"):
        assert real[f"measured_{column}"].equals(real[column]), column
    settings = CutoutSettings(kind="sim", dr5_dir=mock_survey / "dr5", obiwan_dir=mock_survey / "obiwan")
    run_cutouts(settings, BRICK, tmp_path / "sim.h5")
    _, sim, attributes = load(tmp_path / "sim.h5")
    assert sim["measured"].all() and len(attributes["fits_from"]) == 4
    for rsdir in find_rsdirs(mock_survey / "obiwan", BRICK):
        tractor = legacy.read_tractor(rsdir.tractor_path)
        fakes = sim[sim["rsdir"] == rsdir.name]
        for _, fake in fakes.iterrows():
            (row,) = np.flatnonzero(np.hypot(tractor["bx"] - fake["x"], tractor["by"] - fake["y"]) < 0.01)
            assert fake["measured_mag_dered_g"] == pytest.approx(tractor["mag_dered_g"].iloc[row], rel=1e-6)
            assert fake["measured_type"] == tractor["type"].iloc[row]
    # The fit is a noisy measurement of the truth, not the truth.
    difference = sim["measured_mag_dered_r"] - sim["mag_dered_r"]
    assert (difference != 0).all() and difference.abs().median() < 0.3
    # No rs dir tractor catalogs: the fakes have no fit.
    bare = tmp_path / "bare"
    shutil.copytree(mock_survey, bare)
    shutil.rmtree(bare / "obiwan" / "tractor")
    bare_settings = CutoutSettings(kind="sim", dr5_dir=bare / "dr5", obiwan_dir=bare / "obiwan")
    run_cutouts(bare_settings, BRICK, tmp_path / "bare.h5")
    _, unmeasured, _ = load(tmp_path / "bare.h5")
    assert len(unmeasured) == len(sim) and not unmeasured["measured"].any()
    assert unmeasured["measured_mag_dered_g"].isna().all() and (unmeasured["measured_type"] == "").all()


def test_mock_fakes_sit_at_the_stamp_centre_in_the_difference_with_the_dr5_coadd(mock_survey, tmp_path):
    """The injected light (rs dir stamp minus the same window of the DR5 coadd) is centred where the catalog says:
    no one-pixel offset between what is cut for fakes and for reals (DATA.md section 5.1)."""
    settings = CutoutSettings(kind="sim", dr5_dir=mock_survey / "dr5", obiwan_dir=mock_survey / "obiwan")
    out = tmp_path / "sim.h5"
    written = run_cutouts(settings, BRICK, out)
    assert written.sources_read == 120 and written.sources_written > 60
    stamps, catalog, _ = load(out)
    dr5 = legacy.read_coadd(mock_survey / "dr5" / "coadd" / "123" / BRICK, BRICK)
    offsets = np.arange(-HALF, HALF)
    errors = []
    bright = catalog.index[(catalog["flux_z"] > 3) & (catalog["size"] < 1.0)]
    assert len(bright) >= 5
    for index in bright:
        row = catalog.loc[index]
        window = dr5.image[2][np.ix_(row["centre_y"] + offsets, row["centre_x"] + offsets)]
        injected = stamps[index, :, :, 2] - window
        box = injected[HALF - 4 : HALF + 5, HALF - 4 : HALF + 5]
        rows, columns = np.mgrid[-4:5, -4:5]
        weight = np.clip(box, 0, None)
        centroid = np.array([(rows * weight).sum(), (columns * weight).sum()]) / weight.sum()
        errors.append(centroid - [row["offset_y"], row["offset_x"]])
    errors = np.array(errors)
    assert np.abs(errors).max() < 0.35
    assert np.abs(errors.mean(axis=0)).max() < 0.1


def test_mock_magnitudes_are_the_catalogs_dereddened_magnitudes_for_both_kinds(mock_survey, tmp_path):
    dr5, obiwan = mock_survey / "dr5", mock_survey / "obiwan"
    real = run_cutouts(CutoutSettings(kind="real", dr5_dir=dr5), BRICK, tmp_path / "real.h5")
    assert real.sources_written > 0
    _, real_catalog, attributes = load(tmp_path / "real.h5")
    tractor = legacy.read_tractor(dr5 / "tractor" / "123" / f"tractor-{BRICK}.fits").set_index("objid")
    for band in "grz":
        expected = tractor.loc[real_catalog["id"], f"mag_dered_{band}"].to_numpy()
        np.testing.assert_allclose(real_catalog[f"mag_dered_{band}"], expected, rtol=1e-12)
        observed = tractor.loc[real_catalog["id"], f"flux_{band}"].to_numpy()
        np.testing.assert_allclose(real_catalog[f"flux_{band}"], observed, rtol=1e-6)
    assert (real_catalog["mag_dered_r"] < 23.9).all()  # elg_padded, the default
    assert (
        sum(
            counts(attributes)[key]
            for key in ("sources_written", "dropped_off_image", "dropped_no_coverage", "dropped_near_fake")
        )
        == (counts(attributes)["sources_selected"])
    )

    run_cutouts(CutoutSettings(kind="sim", dr5_dir=dr5, obiwan_dir=obiwan), BRICK, tmp_path / "sim.h5")
    _, sim_catalog, _ = load(tmp_path / "sim.h5")
    for rsdir in sim_catalog["rsdir"].unique():
        simcat = read_simcat(obiwan / "obiwan" / "123" / BRICK / rsdir / f"simcat-elg-{BRICK}.fits")
        simcat = simcat.set_index("id")
        rows = sim_catalog[sim_catalog["rsdir"] == rsdir]
        np.testing.assert_allclose(rows["mag_dered_g"], simcat.loc[rows["id"], "mag_dered_g"], rtol=1e-12)
        np.testing.assert_allclose(rows["x"], simcat.loc[rows["id"], "x"], atol=0.01)  # WCS agrees with the simcat


# --------------------------------------------------------------------------- batch mode and MPI


@pytest.fixture(scope="module")
def three_brick_mock(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("three")
    run_mock_survey(MockSettings(out=root, bricks=3, size=256, seed=5, rsdirs=1, fakes_per_rsdir=5))
    return root


def _mpiexec() -> Path:
    mpiexec = BIN / "mpiexec"
    if not mpiexec.is_file():
        pytest.fail(f"no mpiexec next to the interpreter ({mpiexec}); install the mpi extra (mpich)")
    return mpiexec


def _batch(mock: Path, bricks_file: Path, out_dir: Path, ranks: int) -> subprocess.CompletedProcess:
    command = [str(BIN / "realfake"), "cutouts", "--kind", "real", "--bricks", str(bricks_file), "--out-dir",
               str(out_dir), "--dr5-dir", str(mock / "dr5"), "--selection", "all_primary"]  # fmt: skip
    if ranks > 1:
        command = [str(_mpiexec()), "-n", str(ranks), *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ))


def test_batch_mode_under_mpiexec_splits_the_bricks_and_skips_complete_files(three_brick_mock, tmp_path):
    bricks = mock_brick_names(3)
    bricks_file = tmp_path / "bricks.txt"
    bricks_file.write_text("# three bricks\n" + "\n".join(bricks) + "\n")
    out_dir = tmp_path / "cutouts"

    result = _batch(three_brick_mock, bricks_file, out_dir, ranks=2)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3
    assert sum(f"[rank 0/2]: brick {bricks[0]} (1/2)" in line for line in lines) == 1
    assert sum(f"[rank 1/2]: brick {bricks[1]} (1/1)" in line for line in lines) == 1
    assert sum(f"[rank 0/2]: brick {bricks[2]} (2/2)" in line for line in lines) == 1
    settings = CutoutSettings(kind="real", dr5_dir=three_brick_mock / "dr5", selection="all_primary")
    files = [cutouts_path(out_dir, brick) for brick in bricks]
    assert files[0] == out_dir / bricks[0][:3] / f"{bricks[0]}.h5"
    for brick, path in zip(bricks, files):
        assert cutouts_file_is_complete(path, expected_attributes(settings, brick), catalog_columns(settings.bands))
        tractor = legacy.read_fits_table(three_brick_mock / "dr5" / "tractor" / brick[:3] / f"tractor-{brick}.fits")
        assert load(path)[2]["sources_read"] == len(tractor) > 0
    modified = [path.stat().st_mtime_ns for path in files]

    files[1].write_bytes(files[1].read_bytes()[:1000])  # as if killed while writing without the atomic rename
    result = _batch(three_brick_mock, bricks_file, out_dir, ranks=2)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("exists and is complete, skipped") == 2
    assert [path.stat().st_mtime_ns for path in files][::2] == modified[::2]
    assert cutouts_file_is_complete(files[1], expected_attributes(settings, bricks[1]), catalog_columns(settings.bands))


def test_batch_mode_without_mpi_reports_a_bad_brick_and_still_makes_the_others(three_brick_mock, tmp_path):
    bricks = mock_brick_names(3)
    bricks_file = tmp_path / "bricks.txt"
    bricks_file.write_text(f"{bricks[0]}\n{OTHER_BRICK}\n{bricks[2]}\n")
    out_dir = tmp_path / "cutouts"
    result = _batch(three_brick_mock, bricks_file, out_dir, ranks=1)
    assert result.returncode == 2
    assert f"[rank 0/1]: brick {OTHER_BRICK} (2/3): error: brick {OTHER_BRICK} is not in the survey" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("realfake cutouts: error: 1 of 3 bricks failed")
    assert cutouts_path(out_dir, bricks[0]).is_file() and cutouts_path(out_dir, bricks[2]).is_file()
    assert not cutouts_path(out_dir, OTHER_BRICK).exists()


def test_a_bad_brick_list_names_the_line(tmp_path, capsys):
    bricks_file = tmp_path / "bricks.txt"
    bricks_file.write_text(f"{BRICK}\n123p45\n")
    status, stderr = cutouts_cli(
        [
            "cutouts",
            "--kind",
            "real",
            "--bricks",
            str(bricks_file),
            "--out-dir",
            str(tmp_path / "out"),
            "--dr5-dir",
            str(tmp_path),
        ],  # fmt: skip
        capsys,
    )
    assert status == 2 and f"{bricks_file}, line 2" in stderr and "123p45" in stderr


# --------------------------------------------------------------------------- catalog columns per kind


def test_type_size_and_shape_columns_of_real_and_fake_sources():
    from realfake.cutouts import fake_type, real_source_table

    types = ["PSF", "REX", "EXP", "DEV", "COMP"]
    tractor = pd.DataFrame({
        "objid": np.arange(5), "ra": np.zeros(5), "dec": np.zeros(5), "type": types,
        "flux_z": np.full(5, 4.0), "mw_transmission_z": np.full(5, 0.8), "psfsize_z": np.full(5, 1.4),
        "shapeexp_r": [0.0, 0.4, 0.9, 0.0, 0.5], "shapeexp_e1": [0.0, 0.0, 0.3, 0.0, 0.1],
        "shapeexp_e2": [0.0, 0.0, -0.2, 0.0, 0.1], "shapedev_r": [0.0, 0.0, 0.0, 1.5, 2.5],
        "shapedev_e1": [0.0, 0.0, 0.0, 0.25, 0.1], "shapedev_e2": [0.0, 0.0, 0.0, 0.05, 0.1],
        "fracdev": [0.0, 0.0, 0.0, 1.0, 0.5],
    })  # fmt: skip
    table = real_source_table(tractor, BRICK, ("z",))
    assert list(table["type"]) == types
    np.testing.assert_allclose(table["size"], [0.7, 0.4, 0.9, 1.5, 1.5])  # PSF: psfsize / 2; COMP: fracdev-weighted
    np.testing.assert_array_equal(table["sersic_n"], [np.nan, 1.0, 1.0, 4.0, np.nan])
    np.testing.assert_array_equal(table["e1"], [0.0, 0.0, 0.3, 0.25, np.nan])
    np.testing.assert_array_equal(table["e2"], [0.0, 0.0, -0.2, 0.05, np.nan])
    np.testing.assert_allclose(table["mag_dered_z"], 22.5 - 2.5 * np.log10(4.0 / 0.8))
    assert list(fake_type([1.0, 4.0, 2.5, 1.0], [0.5, 0.5, 0.5, 0.0])) == ["EXP", "DEV", "SER", "PSF"]


def test_input_files_list_every_file_the_cutouts_read(tiny, tmp_path):
    from realfake.cutouts import input_files

    tiny.write_coadd(tiny.dr5_coadd_dir(), tiny.constant_planes())
    tiny.write_coadd(tiny.rsdir_coadd_dir("rs0"), tiny.constant_planes())
    tiny.write_coadd(tiny.rsdir_coadd_dir("rs3"), tiny.constant_planes())
    tiny.write_tractor([64.0], [64.0])
    tiny.write_simcat("rs0", [64.0], [64.0])
    _write_older_simcat(tiny, "rs3")  # takes its transmission from the DR5 tractor catalog
    for kind in ("real", "sim"):
        settings = CutoutSettings(kind=kind, dr5_dir=tiny.dr5, obiwan_dir=tiny.obiwan, selection="all_primary")
        run_cutouts(settings, BRICK, tmp_path / f"{kind}.h5")
        read = set(load(tmp_path / f"{kind}.h5")[2]["inputs"])
        listed = {str(path) for path in input_files(settings, BRICK)}
        assert read <= listed
        assert len(listed) == (8 if kind == "real" else 1 + 2 + 1 + 12)
        assert str(tiny.tractor_path()) in read


# --------------------------------------------------------------------------- the workflow (Snakemake itself)

WORKFLOW_PARTS = ["Snakefile", "workflow", "config", "profiles", "environment.yml"]


def workflow_copy(tmp_path: Path) -> Path:
    """A copy of the workflow to run Snakemake in (never in the repository itself)."""
    copy = tmp_path / "repository"
    copy.mkdir()
    for part in WORKFLOW_PARTS:
        source = REPOSITORY / part
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, copy / part)
    return copy


def snakemake(directory: Path, overrides: dict, *arguments: str) -> subprocess.CompletedProcess:
    """The project's snakemake in ``directory`` with ``overrides`` merged into the config; output in .stdout."""
    override_file = directory.parent / "override.yaml"
    override_file.write_text(yaml.safe_dump(overrides))
    environment = dict(os.environ)
    environment["PATH"] = os.pathsep.join([str(BIN), environment.get("PATH", "")])
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY / "src"), environment.get("PYTHONPATH")]))
    return subprocess.run(
        [str(BIN / "snakemake"), "--configfile", str(override_file), *arguments],
        cwd=directory, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600,
    )  # fmt: skip


def planned_cutouts_jobs(output: str) -> list[dict[str, str]]:
    """wildcards, input and (with -p) shell command of each cutouts job in a dry run."""
    jobs = []
    for block in output.split("\nrule ")[1:]:
        if not block.startswith("cutouts:"):
            continue
        fields = dict(re.findall(r"^\s+(\w+): (.*)$", block, flags=re.MULTILINE))
        shell = re.search(r"^Shell command: (realfake cutouts .*)$", block, flags=re.MULTILINE)
        fields["shell"] = shell[1] if shell else ""
        fields.update(re.findall(r"(\w+)=(\w+)", fields["wildcards"]))
        jobs.append(fields)
    return jobs


@pytest.mark.parametrize("real_source", ["dr5", "rsdir"])
def test_workflow_plans_one_cutouts_job_per_brick_and_kind_with_exactly_its_files(tmp_path, real_source):
    copy = workflow_copy(tmp_path)
    overrides = {
        "cutouts": {"selection": "all_primary", "select_fakes": True, "pad_edges": True, "real_source": real_source}
    }
    result = snakemake(copy, overrides, "-n", "-p", "--cores", "1")
    assert result.returncode == 0, result.stdout
    jobs = planned_cutouts_jobs(result.stdout)
    mock = yaml.safe_load((copy / "config" / "config.yaml").read_text())["mock"]
    bricks = mock_brick_names(mock["bricks"])
    rsdirs = mock_rsdir_names(mock["rsdirs"], mock["fakes_per_rsdir"])
    assert len(rsdirs) == 2
    assert sorted((job["kind"], job["brick"]) for job in jobs) == sorted(
        (k, b) for k in ("real", "sim") for b in bricks
    )
    for job in jobs:
        kind, brick, directory = job["kind"], job["brick"], job["brick"][:3]
        assert job["bri"] == directory
        assert job["output"] == f"results/cutouts/{kind}/{directory}/{brick}.h5"
        assert job["log"] == f"logs/cutouts/{kind}/{directory}/{brick}.log"
        assert job["benchmark"] == f"benchmarks/cutouts/{kind}/{directory}/{brick}.tsv"
        inputs = set(job["input"].split(", "))
        from_dr5 = kind == "real" and real_source == "dr5"
        root = "results/mock/dr5" if from_dr5 else "results/mock/obiwan"
        coadd_dirs = [f"{root}/coadd/{directory}/{brick}"] if from_dr5 else [
            f"{root}/coadd/{directory}/{brick}/{rsdir}" for rsdir in rsdirs]  # fmt: skip
        expected = {"results/mock/dr5/survey-bricks.fits"}
        expected |= {f"{coadd_dir}/legacysurvey-{brick}-{product}-{band}.fits.fz" for coadd_dir in coadd_dirs
                     for product in ("image", "invvar") for band in "grz"}  # fmt: skip
        if kind == "real":
            expected.add(f"results/mock/dr5/tractor/{directory}/tractor-{brick}.fits")
        for rsdir in rsdirs if not from_dr5 else ():
            expected.add(f"{root}/obiwan/{directory}/{brick}/{rsdir}/simcat-elg-{brick}.fits")
            if kind == "sim":
                expected.add(f"{root}/tractor/{directory}/{brick}/{rsdir}/tractor-{brick}.fits")
        assert inputs == expected
        assert job["shell"].startswith(
            f"realfake cutouts --kind {kind} --brick {brick} --out results/cutouts/{kind}/{directory}/{brick}.h5"
            " --bands grz --dr5-dir results/mock/dr5 --obiwan-dir results/mock/obiwan --injector obiwan"
            " --selection all_primary"
            f" --real-source {real_source} --real-exclusion-radius 32 --select-fakes --pad-edges > "
        )


def test_workflow_refuses_a_cutouts_file_in_the_wrong_directory(tmp_path):
    copy = workflow_copy(tmp_path)
    result = snakemake(copy, {}, "-n", "--cores", "1", f"results/cutouts/real/999/{BRICK}.h5")
    assert result.returncode != 0
    assert f"cutouts of brick {BRICK} belong in directory 123, not 999" in result.stdout


def _files_config(dr5: Path, obiwan: Path, bricks_file: Path) -> dict:
    return {
        "input": {"source": "files", "dr5_dir": str(dr5), "obiwan_dir": str(obiwan), "bricks_file": str(bricks_file)},
        "bands": ["z"],
        "cutouts": {"selection": "all_primary", "select_fakes": False, "pad_edges": False},
        "shards": {"match": ["mag_dered_z"], "split": "example"},
    }


@pytest.mark.slow
def test_workflow_on_the_real_obiwan_files(realdata_trees, tmp_path):
    dr5, obiwan = realdata_trees
    bricks_file = tmp_path / "bricks.txt"
    bricks_file.write_text(f"{BRICK}\n")
    copy = workflow_copy(tmp_path)
    targets = [f"results/cutouts/{kind}/123/{BRICK}.h5" for kind in ("real", "sim")]
    result = snakemake(copy, _files_config(dr5, obiwan, bricks_file), "--cores", "2", *targets)
    assert result.returncode == 0, result.stdout
    rs0 = obiwan / "elg" / "123" / BRICK / "rs0"
    _, _, real = load(copy / "results" / "cutouts" / "real" / "123" / f"{BRICK}.h5")
    _, _, sim = load(copy / "results" / "cutouts" / "sim" / "123" / f"{BRICK}.h5")
    assert counts(real)["sources_written"] == 2
    assert (counts(sim)["dropped_off_image"], counts(sim)["dropped_no_coverage"]) == (1, 1)
    assert str(rs0 / "tractor" / f"tractor-{BRICK}.fits") in sim["inputs"]
    assert (
        "dropped 1 off_image, 1 no_coverage" in (copy / "logs" / "cutouts" / "sim" / "123" / f"{BRICK}.log").read_text()
    )


def test_workflow_on_files_stops_planning_at_a_brick_without_rs_dirs(realdata_trees, tmp_path):
    dr5, _ = realdata_trees
    (tmp_path / "empty-obiwan").mkdir()
    bricks_file = tmp_path / "bricks.txt"
    bricks_file.write_text(f"{BRICK}\n")
    copy = workflow_copy(tmp_path)
    result = snakemake(copy, _files_config(dr5, tmp_path / "empty-obiwan", bricks_file), "-n", "--cores", "1")
    assert result.returncode != 0
    assert f"cutouts sim of brick {BRICK}: brick {BRICK} has no obiwan rs dir" in result.stdout


@pytest.mark.slow
def test_workflow_builds_one_brick_on_request_and_reruns_only_a_changed_brick(tmp_path):
    copy = workflow_copy(tmp_path)
    overrides = {"mock": {"bricks": 2, "size": 256, "rsdirs": 1, "fakes_per_rsdir": 10}, "shards": {"split": "example"}}
    first, second = mock_brick_names(2)
    target = f"results/cutouts/real/{first[:3]}/{first}.h5"
    # Every brick's cutouts (the stages after them need more examples than this tiny mock has).
    every = [f"results/cutouts/{kind}/{brick[:3]}/{brick}.h5" for kind in ("real", "sim") for brick in (first, second)]

    result = snakemake(copy, overrides, "--cores", "2", target)
    assert result.returncode == 0, result.stdout
    built = sorted(str(path.relative_to(copy)) for path in (copy / "results" / "cutouts").rglob("*.h5"))
    assert built == [target]
    assert not (copy / "results" / "mock" / "dr5" / "coadd" / second[:3] / second).exists()
    settings = CutoutSettings(kind="real", dr5_dir=Path("results/mock/dr5"))
    assert cutouts_file_is_complete(
        copy / target, expected_attributes(settings, first), catalog_columns(("g", "r", "z"))
    )
    assert "stamps of" in (copy / "logs" / "cutouts" / "real" / first[:3] / f"{first}.log").read_text()
    assert (copy / "benchmarks" / "cutouts" / "real" / first[:3] / f"{first}.tsv").is_file()

    result = snakemake(copy, overrides, "--cores", "2", *every)
    assert result.returncode == 0, result.stdout
    for kind in ("real", "sim"):
        for brick in (first, second):
            assert (copy / "results" / "cutouts" / kind / brick[:3] / f"{brick}.h5").is_file()
    result = snakemake(copy, overrides, "-n", "--cores", "1", *every)
    assert result.returncode == 0 and "Nothing to be done" in result.stdout, result.stdout

    # One brick's DR5 image changes: only that brick's real cutouts re-run. (Snakemake >= 9.18
    # also compares input checksums, so a plain `touch` with unchanged content re-runs nothing.)
    image = copy / "results" / "mock" / "dr5" / "coadd" / first[:3] / first / f"legacysurvey-{first}-image-r.fits.fz"
    with fits.open(image) as hdus:
        pixels, header = hdus[1].data.copy(), hdus[1].header.copy()
    pixels[100, 100] += 0.5
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(pixels, header=header)]).writeto(image, overwrite=True)
    result = snakemake(copy, overrides, "-n", "--cores", "1", *every)
    assert result.returncode == 0, result.stdout
    assert [(job["kind"], job["brick"]) for job in planned_cutouts_jobs(result.stdout)] == [("real", first)]
    assert "rule mock_brick" not in result.stdout

    # One rs dir's simcat changes: only that brick's sim cutouts re-run.
    result = snakemake(copy, overrides, "--cores", "2", *every)
    assert result.returncode == 0, result.stdout
    simcat = copy / "results" / "mock" / "obiwan" / "obiwan" / second[:3] / second / "rs0" / f"simcat-elg-{second}.fits"
    with fits.open(simcat, mode="update") as hdus:
        hdus[1].data["rhalf"][0] *= 1.01
    result = snakemake(copy, overrides, "-n", "--cores", "1", *every)
    assert result.returncode == 0, result.stdout
    assert [(job["kind"], job["brick"]) for job in planned_cutouts_jobs(result.stdout)] == [("sim", second)]
    assert "rule mock_brick" not in result.stdout


def test_config_schema_offers_the_selections_and_defaults_of_the_cutouts_command():
    from realfake.cutouts import DEFAULT_SELECTION
    from realfake.survey.selection import SELECTIONS

    schema = yaml.safe_load((REPOSITORY / "workflow" / "schemas" / "config.schema.yaml").read_text())
    cutouts = schema["properties"]["cutouts"]["properties"]
    # Any text: a named selection or an expression; the description names the named ones.
    assert "enum" not in cutouts["selection"] and cutouts["selection"]["type"] == "string"
    assert all(name in cutouts["selection"]["description"] for name in SELECTIONS)
    assert "expression" in cutouts["selection"]["description"]
    assert cutouts["selection"]["default"] == DEFAULT_SELECTION == CutoutSettings(kind="real", dr5_dir=Path()).selection
    assert cutouts["select_fakes"]["default"] is False and cutouts["pad_edges"]["default"] is False


def test_distance_to_no_coverage_counts_pixels_to_a_gap_or_the_edge():
    from realfake.cutouts.stamps import DISTANCE_CAP, distance_to_no_coverage

    inverse_variance = np.ones((3, 200, 300))
    inverse_variance[1, :, 150] = 0.0  # a chip gap in one band is a gap
    centre_x = np.array([140, 100, 5, 250, 220])
    centre_y = np.array([100, 100, 100, 190, 100])
    expected = [10, 50, 6, 10, DISTANCE_CAP]  # the gap 10 away; 50; the left edge; the bottom edge; far
    inverse_variance[:, :, 280:] = 0.0
    expected[4] = 60  # the uncovered strip from column 280 on
    assert distance_to_no_coverage(inverse_variance, centre_x, centre_y).tolist() == expected
