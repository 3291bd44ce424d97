"""The mock survey: real layouts, realistic noise and coverage, measured catalogs, honest fakes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from scipy import stats

from realfake.cli import main
from realfake.conventions import brick_directory
from realfake.errors import RealfakeError
from realfake.mock.fakes import MIN_FAKE_SEPARATION
from realfake.mock.layout import mock_brick_names, mock_rsdir_names
from realfake.mock.render import render_sources
from realfake.mock.settings import STANDARD_STRENGTH, MockSettings
from realfake.mock.survey import run_mock_survey
from realfake.survey import legacy, obiwan
from realfake.survey.selection import select

SIZE = 384
BRICK = "1238p245"


def _write(root: Path, **overrides) -> Path:
    settings = MockSettings(out=root, bricks=1, size=SIZE, seed=7, rsdirs=2, fakes_per_rsdir=40, **overrides)
    run_mock_survey(settings)
    return root


@pytest.fixture(scope="module")
def mock_none(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("none"))


@pytest.fixture(scope="module")
def mock_variants(tmp_path_factory) -> dict[str, Path]:
    return {name: _write(tmp_path_factory.mktemp(name), mismatch=name) for name in ("size", "profile", "psf", "noise")}


def _files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def _truth(root: Path):
    return legacy.read_fits_table(root / "truth" / "123" / f"truth-{BRICK}.fits")


def test_layout_matches_dr5_and_obiwan(mock_none):
    assert (mock_none / "bricks.txt").read_text().split() == [BRICK]
    table = legacy.read_brick_table(legacy.find_brick_table(mock_none / "dr5"))
    brick = legacy.lookup_brick(table, BRICK, mock_none / "dr5")
    # The real DR5 brick 1238p245 (../shared/realdata header): RA 123.75-124.0244, Dec 24.375-24.625.
    assert brick.ra1 == pytest.approx(123.75, abs=1e-6)
    assert brick.ra2 == pytest.approx(124.024390243902, abs=1e-6)
    assert (brick.dec1, brick.dec2) == (24.375, 24.625)
    coadd = legacy.read_coadd(mock_none / "dr5" / "coadd" / "123" / BRICK, BRICK)
    assert coadd.image.shape == (3, SIZE, SIZE)
    assert coadd.image.dtype == np.float32
    rsdirs = obiwan.find_rsdirs(mock_none / "obiwan", BRICK)
    assert [rsdir.name for rsdir in rsdirs] == ["rs0", "rs40"] == mock_rsdir_names(2, 40)
    assert {rsdir.layout for rsdir in rsdirs} == {"current"}
    simcat = obiwan.read_simcat(rsdirs[1].simcat_path)
    assert simcat.attrs["schema"] == "current"
    assert list(simcat["id"]) == list(range(40, 80))
    with fits.open(coadd.paths[0]) as hdus:
        assert hdus[0].data is None
        assert isinstance(hdus[1], fits.CompImageHDU)
        assert hdus[1].compression_type == "RICE_1"


def test_brick_names_are_dr5_names():
    names = mock_brick_names(10)
    assert names[0] == "1238p245"
    assert len(set(names)) == 10
    assert all(brick_directory(name) == name[:3] for name in names)


def test_wcs_is_tan_at_0262_centred_on_the_brick(mock_none):
    coadd = legacy.read_coadd(mock_none / "dr5" / "coadd" / "123" / BRICK, BRICK, bands=("r",))
    scale = np.abs(coadd.wcs.pixel_scale_matrix.diagonal()) * 3600
    assert scale == pytest.approx([0.262, 0.262], rel=1e-6)
    assert coadd.wcs.wcs.ctype[0] == "RA---TAN"
    centre_ra, centre_dec = coadd.wcs.all_pix2world((SIZE - 1) / 2, (SIZE - 1) / 2, 0)
    assert centre_ra == pytest.approx(123.887195121951, abs=1e-6)
    assert centre_dec == pytest.approx(24.5, abs=1e-6)


def test_noise_coverage_and_psf(mock_none):
    coadd = legacy.read_coadd(mock_none / "dr5" / "coadd" / "123" / BRICK, BRICK)
    truth = _truth(mock_none)
    for index, band in enumerate("grz"):
        inverse_variance = coadd.inverse_variance[index]
        covered = inverse_variance > 0
        assert 0.3 < covered.mean() < 0.995, "some, but not most, of the brick lacks coverage"
        assert np.all(coadd.image[index][~covered] == 0)
        assert np.percentile(inverse_variance[covered], 95) > 1.5 * np.percentile(inverse_variance[covered], 5)
        fwhm = fits.getheader(coadd.paths[2 * index], 1)["PSFFWHM"]
        assert 1.0 <= fwhm <= 1.5
        model = render_sources(
            (SIZE, SIZE), truth, truth[f"flux_dered_{band}"].to_numpy() * _transmission(mock_none, band), fwhm
        )
        # Away from sources the pixels are pure sky noise with variance 1/ivar.
        empty = covered & (model < 0.05 / np.sqrt(np.maximum(inverse_variance, 1e-30)))
        chi = (coadd.image[index] - model)[empty] * np.sqrt(inverse_variance[empty])
        assert chi.std() == pytest.approx(1.0, abs=0.05)
        median_sigma = np.median(1 / np.sqrt(inverse_variance[covered]))
        assert {"g": 0.002, "r": 0.005, "z": 0.012}[band] < median_sigma < {"g": 0.007, "r": 0.015, "z": 0.035}[band]


def _transmission(root: Path, band: str) -> float:
    tractor = legacy.read_tractor(root / "dr5" / "tractor" / "123" / f"tractor-{BRICK}.fits")
    return float(tractor[f"mw_transmission_{band}"].iloc[0])


def test_catalog_is_measured_not_truth(mock_none):
    tractor = legacy.read_tractor(mock_none / "dr5" / "tractor" / "123" / f"tractor-{BRICK}.fits")
    truth = _truth(mock_none)
    matched = truth[truth["objid"] >= 0].set_index("objid").loc[tractor["objid"]]
    assert set(tractor["type"]) >= {"PSF", "REX", "EXP", "DEV"}
    true_flux = matched["flux_dered_r"].to_numpy() * tractor["mw_transmission_r"].to_numpy()
    pull = (tractor["flux_r"].to_numpy() - true_flux) * np.sqrt(tractor["flux_ivar_r"].to_numpy())
    assert not np.allclose(tractor["flux_r"], true_flux)
    assert pull.std() == pytest.approx(1.0, abs=0.15)
    galaxies = tractor["type"].isin(["EXP", "REX"]).to_numpy()
    assert not np.allclose(tractor["shapeexp_r"][galaxies], matched["rhalf"][galaxies])
    # Density like DR5: ~3850 per 0.0625 deg^2, ~17 per arcmin^2.
    area = (SIZE * 0.262 / 60) ** 2
    assert 8 < len(tractor) / area < 30
    selected = select(tractor, "elg_padded")
    assert 0.1 < selected.mean() < 0.7


def test_fakes_sit_where_the_simcat_says_and_carry_their_flux(mock_none):
    real = legacy.read_coadd(mock_none / "dr5" / "coadd" / "123" / BRICK, BRICK, bands=("r",))
    recovered = []
    for rsdir in obiwan.find_rsdirs(mock_none / "obiwan", BRICK):
        simcat = obiwan.read_simcat(rsdir.simcat_path)
        sim = legacy.read_coadd(rsdir.coadd_dir, BRICK, bands=("r",))
        x_fits, y_fits = legacy.wcs_pixel(sim.wcs, simcat["ra"], simcat["dec"], origin=1)
        np.testing.assert_allclose(x_fits, simcat["x_fits"], atol=0.01)
        np.testing.assert_allclose(y_fits, simcat["y_fits"], atol=0.01)
        difference = sim.image[0].astype(np.float64) - real.image[0]
        half = 12
        for _, fake in simcat.iterrows():
            column, row = int(round(fake["x"])), int(round(fake["y"]))
            aperture = (slice(row - half, row + half + 1), slice(column - half, column + half + 1))
            if not (half <= column < SIZE - half and half <= row < SIZE - half):
                continue
            if np.any(sim.inverse_variance[0][aperture] == 0):
                continue
            if np.sort(np.hypot(simcat["x"] - fake["x"], simcat["y"] - fake["y"]))[1] < 2.5 * half:
                continue  # another fake's light in the aperture
            if fake["rhalf"] > 1.2:
                continue  # an extended fake's light reaches beyond the aperture (rhalf 2" loses a quarter)
            recovered.append((difference[aperture].sum(), fake["flux_r"]))
        # Away from the fakes the rs dir coadd is the DR5 coadd (same sky, same noise), to compression precision.
        far = np.ones((SIZE, SIZE), dtype=bool)
        for _, fake in simcat.iterrows():
            column, row = int(round(fake["x"])), int(round(fake["y"]))
            far[max(row - 30, 0) : row + 31, max(column - 30, 0) : column + 31] = False
        assert far.sum() > 1000
        assert np.mean(np.abs(difference[far]) > 2e-4) < 1e-3
        assert np.abs(difference[far]).max() < 1e-3  # faint PSF wings of bright fakes, << sky noise
    recovered = np.array(recovered)
    assert len(recovered) > 10
    np.testing.assert_allclose(recovered[:, 0], recovered[:, 1], rtol=0.1, atol=0.05)


def test_none_fakes_follow_the_selected_real_population(mock_none):
    """The negative control: fake truths and the selected reals' truths come from one distribution."""
    tractor = legacy.read_tractor(mock_none / "dr5" / "tractor" / "123" / f"tractor-{BRICK}.fits")
    truth = _truth(mock_none)
    selected = tractor[select(tractor, "elg_padded")]
    real_truth = truth[truth["objid"] >= 0].set_index("objid").loc[selected["objid"]]
    fakes = np.concatenate(
        [
            obiwan.read_simcat(rsdir.simcat_path)["flux_dered_r"]
            for rsdir in obiwan.find_rsdirs(mock_none / "obiwan", BRICK)
        ]
    )
    assert stats.ks_2samp(real_truth["flux_dered_r"], fakes).pvalue > 0.01
    real_radius = real_truth["rhalf"].to_numpy()
    fake_radius = np.concatenate(
        [obiwan.read_simcat(rsdir.simcat_path)["rhalf"] for rsdir in obiwan.find_rsdirs(mock_none / "obiwan", BRICK)]
    )
    assert stats.ks_2samp(real_radius, fake_radius).pvalue > 0.01


def test_rs_dir_tractor_catalogs_hold_the_dr5_sources_and_the_fakes_as_selected(mock_none, mock_variants):
    """legacypipe's re-fit of each rs dir: the DR5 rows, then a measured row per fake at its position. For
    `none` a fake's measured values are those it was selected on, as a real source's are (so both pass
    elg_padded); `size` and `profile` re-measure the changed fakes with the same noise."""
    dr5 = legacy.read_tractor(mock_none / "dr5" / "tractor" / "123" / f"tractor-{BRICK}.fits")

    def fits(root, rsdir):
        tractor = legacy.read_tractor(root / rsdir.tractor_path.relative_to(mock_none))
        return tractor.iloc[len(dr5) :].reset_index(drop=True), tractor

    for rsdir in obiwan.find_rsdirs(mock_none / "obiwan", BRICK):
        simcat = obiwan.read_simcat(rsdir.simcat_path)
        fakes, tractor = fits(mock_none, rsdir)
        assert len(tractor) == len(dr5) + len(simcat)
        np.testing.assert_array_equal(tractor["flux_r"].iloc[: len(dr5)], dr5["flux_r"])
        np.testing.assert_allclose(fakes["bx"], simcat["x"], atol=1e-3)
        np.testing.assert_allclose(fakes["by"], simcat["y"], atol=1e-3)
        assert select(fakes, "elg_padded").all()
        noise = fakes["flux_r"] - simcat["flux_r"]
        assert (noise != 0).all() and np.abs(noise).median() < 0.2 * simcat["flux_r"].median()
    rs0 = obiwan.find_rsdirs(mock_none / "obiwan", BRICK)[0]
    none, _ = fits(mock_none, rs0)
    size, _ = fits(mock_variants["size"], rs0)
    exponential = none["type"].isin(["REX", "EXP"]).to_numpy()
    assert exponential.sum() > 10
    assert 1.7 < np.median(size["shapeexp_r"][exponential] / none["shapeexp_r"][exponential]) < 2.3
    profile, _ = fits(mock_variants["profile"], rs0)
    assert set(profile["type"][exponential]) == {"DEV"}
    assert (profile["shapedev_r"][exponential] > 0).all()


def test_no_fake_lies_in_another_fakes_stamp(mock_none):
    """Fakes of one rs dir share its images: they keep apart, so no fake gains neighbours that reals lack."""
    rsdirs = obiwan.find_rsdirs(mock_none / "obiwan", BRICK)
    for rsdir in rsdirs:
        simcat = obiwan.read_simcat(rsdir.simcat_path)
        assert len(simcat) == 40
        xy = np.stack([simcat["x_fits"], simcat["y_fits"]], axis=1)
        separation = np.abs(xy[:, None] - xy[None, :]).max(axis=2)
        np.fill_diagonal(separation, np.inf)
        assert separation.min() >= MIN_FAKE_SEPARATION > 32  # half a 64-pixel stamp
    # Across rs dirs (separate images) fakes may fall anywhere.
    ids = [set(obiwan.read_simcat(rsdir.simcat_path)["id"]) for rsdir in rsdirs]
    assert not ids[0] & ids[1]


def test_mismatches_change_one_thing(mock_none, mock_variants):
    rsdir = "rs0"

    def simcat(root):
        return obiwan.read_simcat(root / "obiwan" / "obiwan" / "123" / BRICK / rsdir / f"simcat-elg-{BRICK}.fits")

    none = simcat(mock_none)
    galaxies = none["rhalf"] > 0
    assert galaxies.sum() > 10
    size = simcat(mock_variants["size"])
    np.testing.assert_allclose(size["rhalf"][galaxies], 2 * none["rhalf"][galaxies], rtol=1e-6)
    np.testing.assert_allclose(size["flux_r"], none["flux_r"])
    profile = simcat(mock_variants["profile"])
    assert set(none["sersic_n"][galaxies]) == {1.0}
    assert set(profile["sersic_n"][galaxies]) == {4.0}

    def fake_pixels(root):
        real = legacy.read_coadd(root / "dr5" / "coadd" / "123" / BRICK, BRICK, bands=("r",))
        sim = legacy.read_coadd(root / "obiwan" / "coadd" / "123" / BRICK / rsdir, BRICK, bands=("r",))
        return sim.image[0].astype(np.float64) - real.image[0], sim.inverse_variance[0]

    # psf: unconvolved fakes are far more concentrated than the same fakes convolved.
    convolved, _ = fake_pixels(mock_none)
    sharp, _ = fake_pixels(mock_variants["psf"])
    assert sharp.max() > 3 * convolved.max()
    # noise: without add_sim_noise the fake pixels are exactly the noiseless model.
    quiet, inverse_variance = fake_pixels(mock_variants["noise"])
    fwhm = fits.getheader(mock_none / "dr5" / "coadd" / "123" / BRICK / f"legacysurvey-{BRICK}-image-r.fits.fz", 1)[
        "PSFFWHM"
    ]
    fakes = _truth_of_fakes(none)
    model = render_sources((SIZE, SIZE), fakes, none["flux_r"].to_numpy(), fwhm)
    bright = (model > 0.01) & (inverse_variance > 0)
    assert bright.sum() > 100
    assert np.abs(quiet - model)[bright].max() < 3e-4
    assert np.abs(convolved - model)[bright].std() > 3 * np.abs(quiet - model)[bright].std()


def _truth_of_fakes(simcat):
    """Simcat rows -> the truth columns render_sources takes."""
    return simcat.assign(fracdev=0.0, rhalf_dev=0.0, e1_dev=0.0, e2_dev=0.0)[
        ["x", "y", "sersic_n", "rhalf", "e1", "e2", "fracdev", "rhalf_dev", "e1_dev", "e2_dev"]
    ]


def test_same_seed_gives_byte_identical_files(tmp_path, mock_none):
    again = _write(tmp_path / "again")
    assert _files(again) == _files(mock_none)


def test_different_seed_gives_a_different_sky(tmp_path, mock_none):
    other = MockSettings(out=tmp_path / "other", bricks=1, size=SIZE, seed=8, rsdirs=2, fakes_per_rsdir=40)
    run_mock_survey(other)
    path = Path("dr5") / "coadd" / "123" / BRICK / f"legacysurvey-{BRICK}-image-r.fits.fz"
    assert (tmp_path / "other" / path).read_bytes() != (mock_none / path).read_bytes()


def test_one_brick_at_a_time_equals_all_at_once(tmp_path):
    together = tmp_path / "together"
    run_mock_survey(MockSettings(out=together, bricks=2, size=160, seed=3, rsdirs=1, fakes_per_rsdir=5))
    separate = tmp_path / "separate"
    settings = MockSettings(out=separate, bricks=2, size=160, seed=3, rsdirs=1, fakes_per_rsdir=5)
    run_mock_survey(settings, table_only=True)
    for name in reversed(mock_brick_names(2)):
        run_mock_survey(settings, only_bricks=[name])
    assert _files(separate) == _files(together)


def test_bad_settings_are_one_line_errors(tmp_path):
    with pytest.raises(RealfakeError, match="mismatch"):
        MockSettings(out=tmp_path, mismatch="colour")
    with pytest.raises(RealfakeError, match="bricks"):
        MockSettings(out=tmp_path, bricks=0)
    with pytest.raises(RealfakeError, match="9999p999"):
        run_mock_survey(MockSettings(out=tmp_path, bricks=1, size=160), only_bricks=["9999p999"])
    result = subprocess.run(
        [sys.executable, "-m", "realfake.cli", "mock-survey", "--out", str(tmp_path / "x"), "--bricks", "0"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "bricks" in result.stderr
    assert not (tmp_path / "x").exists()


def _pixels_and_tables(root: Path) -> dict[str, np.ndarray]:
    """Every image, inverse variance and catalog column of a mock survey, decompressed, by file and column
    (headers left out: they name the mismatch and its strength)."""
    contents = {}
    for path in sorted(root.rglob("*.fits*")):
        with fits.open(path) as hdus:
            data = hdus[1].data
            name = str(path.relative_to(root))
            if isinstance(data, fits.FITS_rec):
                for column in data.columns.names:
                    contents[f"{name}:{column}"] = np.asarray(data[column])
            else:
                contents[name] = np.asarray(data)
    return contents


@pytest.mark.parametrize("mismatch", ["size", "psf", "profile", "noise", "background", "ivar", "undetected", "edges"])
def test_a_mismatch_at_its_identity_strength_gives_exactly_the_fakes_of_none(mismatch, mock_none, tmp_path):
    from realfake.mock.settings import IDENTITY_STRENGTH

    identity = _write(tmp_path / mismatch, mismatch=mismatch, strength=IDENTITY_STRENGTH[mismatch])
    expected, found = _pixels_and_tables(mock_none), _pixels_and_tables(identity)
    assert found.keys() == expected.keys()
    for key, values in expected.items():
        np.testing.assert_array_equal(found[key], values, err_msg=key)
    header = fits.getheader(
        identity / "obiwan" / "coadd" / "123" / BRICK / "rs0" / f"legacysurvey-{BRICK}-image-r.fits.fz", 1
    )
    assert (header["MISMATCH"], header["STRENGTH"]) == (mismatch, IDENTITY_STRENGTH[mismatch])


def test_the_standard_strength_is_the_mismatch_without_one(mock_variants, tmp_path):
    standard = _pixels_and_tables(_write(tmp_path / "size", mismatch="size", strength=2.0))
    without = _pixels_and_tables(mock_variants["size"])
    assert standard.keys() == without.keys()
    for key, values in without.items():
        np.testing.assert_array_equal(standard[key], values, err_msg=key)


def test_the_measured_size_difference_grows_with_the_size_strength(tmp_path):
    from realfake.survey.selection import tractor_half_light_radius

    differences = []
    for strength in (1.0, 1.25, 1.5, 2.0):
        root = _write(tmp_path / f"size{strength}", mismatch="size", strength=strength)
        reals = legacy.read_tractor(root / "dr5" / "tractor" / "123" / f"tractor-{BRICK}.fits")
        fake_sizes = []
        for rsdir in mock_rsdir_names(2, 40):
            refit = legacy.read_tractor(root / "obiwan" / "tractor" / "123" / BRICK / rsdir / f"tractor-{BRICK}.fits")
            fakes = refit.iloc[len(reals) :]  # the rs dir's re-fit lists the DR5 sources, then the fakes
            assert len(fakes) == 40
            fake_sizes.append(tractor_half_light_radius(fakes))
        selected = reals[select(reals, "elg_padded")]
        differences.append(np.median(np.concatenate(fake_sizes)) - np.median(tractor_half_light_radius(selected)))
    assert differences == sorted(differences) and differences[-1] - differences[0] > 0.1
    assert abs(differences[0]) < 0.1  # the identity: the classes agree


def test_a_strength_out_of_range_or_without_a_mismatch_is_refused(tmp_path):
    with pytest.raises(RealfakeError, match="strength needs a named mismatch"):
        MockSettings(out=tmp_path, strength=1.5)
    with pytest.raises(RealfakeError, match="mismatch profile strength must be between 0 and 1, got 1.5"):
        MockSettings(out=tmp_path, mismatch="profile", strength=1.5)
    with pytest.raises(RealfakeError, match="mismatch size strength must be at least 0.1, got 0.0"):
        MockSettings(out=tmp_path, mismatch="size", strength=0.0)


def test_the_strength_help_gives_every_mismatch_its_meaning_and_standard(capsys):
    with pytest.raises(SystemExit):
        main(["mock-survey", "--help"])
    options = " ".join(capsys.readouterr().out.split()).split("options:")[1]
    strength_help = options[options.index("--strength STRENGTH") : options.index("--rsdirs RSDIRS")]
    for mismatch, standard in STANDARD_STRENGTH.items():
        assert re.search(rf"\b{mismatch}: [^;]*\bstandard {standard:g}\b", strength_help), mismatch


def test_too_many_fakes_for_the_brick_says_how_many_fit(tmp_path):
    with pytest.raises(RealfakeError) as error:
        run_mock_survey(MockSettings(out=tmp_path / "a", bricks=1, size=300))
    match = re.search(r"50 fakes per rs dir do not fit in a 300-pixel brick, 40 pixels apart: about (\d+) do; "
                      r"use --fakes-per-rsdir (\d+) \(mock.fakes_per_rsdir\) or fewer", str(error.value))  # fmt: skip
    assert match and match[1] == match[2], str(error.value)
    assert run_mock_survey(MockSettings(out=tmp_path / "b", bricks=1, size=300, fakes_per_rsdir=int(match[2])))


@pytest.fixture(scope="module")
def processing_variants(tmp_path_factory) -> dict[str, Path]:
    variants = {
        name: _write(tmp_path_factory.mktemp(name), mismatch=name) for name in ("background", "ivar", "undetected")
    }
    # Fewer fakes: kept away from the edges, 40 per rs dir do not fit in a 384-pixel brick.
    for name, mismatch in (("edges", "edges"), ("edges_none", "none")):
        root = tmp_path_factory.mktemp(name)
        run_mock_survey(
            MockSettings(out=root, bricks=1, size=SIZE, seed=7, rsdirs=2, fakes_per_rsdir=15, mismatch=mismatch)
        )
        variants[name] = root
    return variants


def _rs0_coadd(root: Path, bands=("r",)):
    return legacy.read_coadd(root / "obiwan" / "coadd" / "123" / BRICK / "rs0", BRICK, bands=bands)


def _dr5_coadd(root: Path, bands=("r",)):
    return legacy.read_coadd(root / "dr5" / "coadd" / "123" / BRICK, BRICK, bands=bands)


def _rs0_simcat(root: Path):
    return obiwan.read_simcat(root / "obiwan" / "obiwan" / "123" / BRICK / "rs0" / f"simcat-elg-{BRICK}.fits")


def _far_from_fakes(root: Path, shape, distance: int = 20) -> np.ndarray:
    far = np.ones(shape, dtype=bool)
    for x, y in _rs0_simcat(root)[["x", "y"]].to_numpy():
        far[max(int(y) - distance, 0) : int(y) + distance, max(int(x) - distance, 0) : int(x) + distance] = False
    return far


def test_background_offsets_the_rs_dir_sky_by_a_tenth_of_its_noise(processing_variants, mock_none):
    root = processing_variants["background"]
    sim, real = _rs0_coadd(root), _dr5_coadd(root)
    covered = (real.inverse_variance[0] > 0) & _far_from_fakes(root, real.image[0].shape)
    offset = (sim.image[0] - real.image[0]) * np.sqrt(real.inverse_variance[0])
    # Lossy compression of either image adds ~1e-4 nmgy of noise: the offset is 0.1 sky sigma.
    assert np.median(offset[covered]) == pytest.approx(0.1, abs=0.02)
    none_offset = (_rs0_coadd(mock_none).image[0] - _dr5_coadd(mock_none).image[0]) * np.sqrt(real.inverse_variance[0])
    assert abs(np.median(none_offset[covered])) < 0.02


def test_ivar_folds_each_fakes_variance_into_the_rs_dir_inverse_variance(processing_variants, mock_none):
    root = processing_variants["ivar"]
    sim, real = _rs0_coadd(root), _dr5_coadd(root)
    covered = real.inverse_variance[0] > 0
    ratio = np.where(covered, sim.inverse_variance[0] / np.where(covered, real.inverse_variance[0], 1), 1.0)
    far = _far_from_fakes(root, ratio.shape)
    np.testing.assert_allclose(ratio[far & covered], 1.0, rtol=0.02)  # relative quantisation of invvar
    centres = [ratio[int(round(y)), int(round(x))] for x, y in _rs0_simcat(root)[["x", "y"]].to_numpy()]
    assert np.median(centres) < 0.97 and max(centres) < 0.995  # dips at every fake (ELGs: a few percent in r)
    none_ratio = _rs0_coadd(mock_none).inverse_variance[0][covered] / real.inverse_variance[0][covered]
    np.testing.assert_allclose(none_ratio, 1.0, rtol=0.02)


def test_undetected_fakes_have_no_refit_in_their_rs_dir(processing_variants, mock_none):
    def refit_count(root):
        reals = legacy.read_tractor(root / "dr5" / "tractor" / "123" / f"tractor-{BRICK}.fits")
        refit = legacy.read_tractor(root / "obiwan" / "tractor" / "123" / BRICK / "rs0" / f"tractor-{BRICK}.fits")
        return len(refit) - len(reals)

    assert refit_count(mock_none) == 40
    assert 0 < refit_count(processing_variants["undetected"]) < 40


def test_edges_keeps_every_fake_half_a_stamp_from_uncovered_pixels(processing_variants):
    from scipy.ndimage import distance_transform_cdt

    def margins(root):
        coadd = _dr5_coadd(root, bands=("g", "r", "z"))
        covered = np.pad((coadd.inverse_variance > 0).all(axis=0), 1, constant_values=False)
        margin = distance_transform_cdt(covered, metric="chessboard")[1:-1, 1:-1]
        fakes = pd.concat([obiwan.read_simcat(path) for path in sorted(root.rglob("simcat-elg-*.fits"))])
        return margin[np.rint(fakes["y"]).astype(int), np.rint(fakes["x"]).astype(int)]

    assert margins(processing_variants["edges"]).min() > 32
    assert margins(processing_variants["edges_none"]).min() <= 32  # without the rule, fakes sit by the edges too


@pytest.mark.parametrize(
    ("mismatch", "strength", "expected"),
    [
        ("psf", np.inf, "mismatch psf strength must be a finite number, got inf"),
        ("size", np.nan, "mismatch size strength must be a finite number, got nan"),
        ("background", -np.inf, "mismatch background strength must be a finite number, got -inf"),
        # FWHM x 4 (6" for the broadest mock PSF, 23 pixels) stays under half a stamp; beyond is no PSF control.
        ("psf", 20.0, "mismatch psf strength must be between 0 and 4, got 20.0"),
    ],
)
def test_a_strength_that_is_not_a_finite_number_or_past_its_bound_is_refused_saying_so(
    tmp_path, mismatch, strength, expected
):
    with pytest.raises(RealfakeError) as error:
        MockSettings(out=tmp_path, mismatch=mismatch, strength=strength)
    assert str(error.value) == expected


@pytest.mark.parametrize("bands", [("z",), ("g", "r"), ("z", "r", "g"), ("g", "r", "z", "i")])
def test_the_mock_refuses_any_bands_but_grz_or_griz(bands):
    """The population is drawn in g, r, i, z and selected in g, r and z: a subset used to pass the settings and
    fail in the catalogs with a KeyError."""
    with pytest.raises(RealfakeError, match=rf"renders bands grz or griz, in that order; got {''.join(bands)}$"):
        MockSettings(out=Path("."), bands=bands, release="dr10")


@pytest.mark.parametrize("release", ["dr5", "dr9"])
def test_the_i_band_needs_dr10(release):
    with pytest.raises(RealfakeError, match=rf"bands griz need release dr10, not {release} "):
        MockSettings(out=Path("."), bands=("g", "r", "i", "z"), release=release)


# --------------------------------------------------------------------------- the legacysim layout


@pytest.fixture(scope="module")
def mock_layouts(tmp_path_factory) -> dict[str, Path]:
    """One small survey (seed, release dr9) with its fakes in obiwan's layout and in legacysim's."""
    roots = {}
    for injector in ("obiwan", "legacysim"):
        roots[injector] = tmp_path_factory.mktemp(injector)
        run_mock_survey(
            MockSettings(
                out=roots[injector], bricks=1, size=256, seed=7, rsdirs=2, fakes_per_rsdir=10, release="dr9",
                injector=injector,
            )
        )  # fmt: skip
    return roots


def test_legacysim_layout_has_its_runs_at_the_top_and_the_dr5_tree_unchanged(mock_layouts):
    root = mock_layouts["legacysim"]
    runs = mock_rsdir_names(2, 10, "legacysim")
    assert runs == ["file0_rs0_skip0", "file0_rs10_skip0"]
    expected = set()
    for run in runs:
        expected |= {
            f"legacysim/{run}/sim/123/injected-{BRICK}.fits",
            f"legacysim/{run}/tractor/123/tractor-{BRICK}.fits",
        }
        expected |= {
            f"legacysim/{run}/coadd/123/{BRICK}/legacysurvey-{BRICK}-{kind}-{band}.fits.fz"
            for kind in ("image", "invvar")
            for band in "grz"
        }
    files = _files(root)
    assert {name for name in files if name.startswith("legacysim/")} == expected
    assert not (root / "obiwan").exists()
    obiwan_files = _files(mock_layouts["obiwan"])
    assert {name: data for name, data in files.items() if not name.startswith("legacysim/")} == {
        name: data for name, data in obiwan_files.items() if not name.startswith("obiwan/")
    }


def test_legacysim_runs_hold_the_obiwan_rs_dirs_pixels_and_re_fits(mock_layouts):
    files = _files(mock_layouts["legacysim"])
    obiwan_files = _files(mock_layouts["obiwan"])
    for rsdir, run in zip(mock_rsdir_names(2, 10), mock_rsdir_names(2, 10, "legacysim"), strict=True):
        for kind in ("image", "invvar"):
            for band in "grz":
                name = f"legacysurvey-{BRICK}-{kind}-{band}.fits.fz"
                assert (
                    files[f"legacysim/{run}/coadd/123/{BRICK}/{name}"]
                    == obiwan_files[f"obiwan/coadd/123/{BRICK}/{rsdir}/{name}"]
                )
        # The re-fit, in the release's (DR9's) schema, as legacysim's legacypipe DR9.6.9 writes it.
        refit = legacy.read_tractor(
            mock_layouts["legacysim"] / "legacysim" / run / "tractor" / "123" / f"tractor-{BRICK}.fits"
        )
        assert refit.attrs["release"] == "dr9"
        assert (
            files[f"legacysim/{run}/tractor/123/tractor-{BRICK}.fits"]
            == obiwan_files[f"obiwan/tractor/123/{BRICK}/{rsdir}/tractor-{BRICK}.fits"]
        )


def test_collided_rows_are_listed_but_not_rendered(mock_layouts):
    root = mock_layouts["legacysim"]
    dr5 = legacy.read_coadd(root / "dr5" / "coadd" / "123" / BRICK, BRICK)
    for run in mock_rsdir_names(2, 10, "legacysim"):
        injected = legacy.read_fits_table(root / "legacysim" / run / "sim" / "123" / f"injected-{BRICK}.fits")
        collided = injected[injected["collided"]]
        assert len(collided) == 3 and (~injected["collided"]).sum() == 10
        assert (collided["id"] >= 20).all() and injected["id"].is_unique
        coadd = legacy.read_coadd(root / "legacysim" / run / "coadd" / "123" / BRICK, BRICK)
        injected_light = coadd.image[2] - dr5.image[2]

        def light_at(rows):
            x, y = np.rint(rows["bx"]).astype(int), np.rint(rows["by"]).astype(int)
            return np.array([np.abs(injected_light[y0 - 2 : y0 + 3, x0 - 2 : x0 + 3]).max() for x0, y0 in zip(x, y)])

        # bx, by are 0-indexed array positions: the fakes' light is there, and none at a collided row's.
        assert np.median(light_at(injected[~injected["collided"]])) > 0.01
        assert light_at(collided).max() < 1e-3


def test_legacysim_needs_a_dr9_or_dr10_release_and_an_injector_it_knows(tmp_path):
    with pytest.raises(RealfakeError, match="injector legacysim .* needs release dr9 or dr10, not dr5 "
                       r"\(config mock.injector and mock.release; flags --injector and --release\)"):  # fmt: skip
        MockSettings(out=tmp_path, injector="legacysim")
    with pytest.raises(RealfakeError, match="injector.*balrog"):
        MockSettings(out=tmp_path, injector="balrog", release="dr9")
    assert MockSettings(out=tmp_path, injector="legacysim", release="dr10").injector == "legacysim"
