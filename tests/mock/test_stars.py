"""The mock's stars (mock.model stars): point-source fakes drawn as the psf_stars sample is made."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from realfake.errors import RealfakeError
from realfake.mock.settings import MockSettings, effective_strength
from realfake.mock.survey import run_mock_survey
from realfake.survey import legacy, obiwan
from realfake.survey.selection import select

SIZE = 384
BRICK = "1238p245"
STAMP_HALF = 8  # pixels: the stamps whose second moments are compared


def _write(root: Path, **overrides) -> Path:
    settings = MockSettings(out=root, bricks=1, size=SIZE, seed=7, rsdirs=2, fakes_per_rsdir=20, **overrides)
    run_mock_survey(settings)
    return root


@pytest.fixture(scope="module")
def stars(tmp_path_factory) -> dict[str, Path]:
    """Star mocks: none, and the psf mismatch at its standard strength (1.25) and at 0.75."""
    return {
        "none": _write(tmp_path_factory.mktemp("stars"), model="stars"),
        "wide": _write(tmp_path_factory.mktemp("wide"), model="stars", mismatch="psf"),
        "narrow": _write(tmp_path_factory.mktemp("narrow"), model="stars", mismatch="psf", strength=0.75),
    }


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_every_star_fake_is_a_point_source(stars):
    for rsdir in obiwan.find_rsdirs(stars["none"] / "obiwan", BRICK):
        simcat = obiwan.read_simcat(rsdir.simcat_path)
        assert len(simcat) == 20
        assert (simcat["rhalf"] == 0).all()
        assert (simcat["n"] == 0).all() if "n" in simcat else (simcat["sersic_n"] == 0).all()
        # Drawn in psf_stars's window on measured values: true r magnitudes near 18-23.
        r_mag = 22.5 - 2.5 * np.log10(simcat["flux_r"] / simcat["mw_transmission_r"])
        assert r_mag.between(17.5, 23.5).all()


def test_the_reals_selection_keeps_only_point_sources(stars):
    catalog = legacy.read_tractor(stars["none"] / "dr5" / "tractor" / "123" / f"tractor-{BRICK}.fits")
    selected = catalog[select(catalog, "psf_stars")]
    assert len(selected) >= 8
    assert set(selected["type"].str.strip()) == {"PSF"}
    assert (catalog["type"].str.strip() == "PSF").sum() > len(selected)  # the window cuts some stars


def test_without_stars_the_mock_is_byte_for_byte_unchanged(tmp_path):
    default = _write(tmp_path / "default")
    galaxies = _write(tmp_path / "galaxies", model="galaxies")
    assert _digests(galaxies) == _digests(default)


@pytest.mark.parametrize("mismatch", ["size", "profile"])
def test_a_galaxy_shape_mismatch_is_refused_for_stars_naming_both_keys(tmp_path, mismatch):
    expected = rf"mismatch {mismatch} .*needs model galaxies.*mock\.mismatch and mock\.model"
    with pytest.raises(RealfakeError, match=expected):
        MockSettings(out=tmp_path, model="stars", mismatch=mismatch)


def test_the_psf_mismatch_of_stars_has_its_own_standard_strength_and_range(tmp_path):
    assert effective_strength(MockSettings(out=tmp_path, model="stars", mismatch="psf")) == 1.25
    assert effective_strength(MockSettings(out=tmp_path, mismatch="psf")) == 0.0
    with pytest.raises(RealfakeError, match=r"psf strength must be between 0.25 and 4 with model stars, got 0.0"):
        MockSettings(out=tmp_path, model="stars", mismatch="psf", strength=0.0)


def _mean_fake_stamp(root: Path) -> np.ndarray:
    """Flux-normalised mean r stamp of the fakes alone (rs dir coadd minus DR5 coadd), (17, 17), centred."""
    real = legacy.read_coadd(root / "dr5" / "coadd" / "123" / BRICK, BRICK, bands=("r",))
    stamps = []
    for rsdir in obiwan.find_rsdirs(root / "obiwan", BRICK):
        simcat = obiwan.read_simcat(rsdir.simcat_path)
        sim = legacy.read_coadd(rsdir.coadd_dir, BRICK, bands=("r",))
        difference = sim.image[0].astype(np.float64) - real.image[0]
        for _, fake in simcat.iterrows():
            column, row = int(round(fake["x"])), int(round(fake["y"]))
            if not (STAMP_HALF <= column < SIZE - STAMP_HALF and STAMP_HALF <= row < SIZE - STAMP_HALF):
                continue
            rows = slice(row - STAMP_HALF, row + STAMP_HALF + 1)
            window = (rows, slice(column - STAMP_HALF, column + STAMP_HALF + 1))
            if np.any(sim.inverse_variance[0][window] == 0):
                continue
            stamps.append(difference[window] / fake["flux_r"])
    assert len(stamps) > 20
    return np.mean(stamps, axis=0)


def _second_moment(stamp: np.ndarray) -> float:
    """Flux-weighted mean squared distance from the stamp's centre, pixels^2."""
    offsets = np.arange(stamp.shape[0]) - stamp.shape[0] // 2
    radius_squared = offsets[:, np.newaxis] ** 2 + offsets[np.newaxis, :] ** 2
    return float((stamp * radius_squared).sum() / stamp.sum())


def test_the_psf_mismatch_makes_star_fakes_wider_or_narrower(stars):
    moments = {name: _second_moment(_mean_fake_stamp(root)) for name, root in stars.items()}
    assert moments["wide"] > 1.2 * moments["none"]
    assert moments["narrow"] < 0.8 * moments["none"]
    # The central pixel's share of the flux goes the other way.
    centres = {name: _mean_fake_stamp(root)[STAMP_HALF, STAMP_HALF] for name, root in stars.items()}
    assert centres["wide"] < centres["none"] < centres["narrow"]
