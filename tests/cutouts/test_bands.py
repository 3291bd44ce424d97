"""DR10's i band, from the mock to the stamps: bands are what the config names, any of g, r, i, z (issue 23).

A brick without i coverage is refused, naming the brick and the band, never zero-filled; so is a fakes'
catalog without i fluxes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from fixtures.tinysurvey import load

from realfake.conventions import bands_in, channel_names
from realfake.cutouts import CutoutSettings, run_cutouts
from realfake.errors import RealfakeError
from realfake.mock.settings import MockSettings
from realfake.mock.survey import run_mock_survey
from realfake.paths import dr5_file, legacysim_file
from realfake.survey import legacy

BRICK = "1238p245"
GRIZ = ("g", "r", "i", "z")
RUN = "file0_rs0_skip0"


def dr10_mock(out: Path, bands: tuple[str, ...]) -> Path:
    settings = MockSettings(
        out=out, bricks=1, size=256, seed=5, rsdirs=1, fakes_per_rsdir=8, release="dr10", injector="legacysim",
        bands=bands,
    )  # fmt: skip
    run_mock_survey(settings)
    return out


@pytest.fixture(scope="module")
def surveys(tmp_path_factory) -> dict[str, Path]:
    """The same DR10 mock (seed) rendered in g, r, z and in g, r, i, z."""
    return {
        "grz": dr10_mock(tmp_path_factory.mktemp("grz"), ("g", "r", "z")),
        "griz": dr10_mock(tmp_path_factory.mktemp("griz"), GRIZ),
    }


def settings_for(root: Path, kind: str, bands: tuple[str, ...] = GRIZ) -> CutoutSettings:
    return CutoutSettings(
        kind=kind, dr5_dir=root / "dr5", obiwan_dir=root / "legacysim", injector="legacysim", bands=bands
    )


def test_the_mock_draws_the_same_sources_in_grz_and_griz_and_measures_i(surveys):
    truths = {name: Table.read(root / "truth" / "123" / f"truth-{BRICK}.fits") for name, root in surveys.items()}
    assert "flux_dered_i" not in truths["grz"].colnames
    # The same scene; which sources are detected (objid) differs, as the i band adds signal to the detection.
    for column in set(truths["grz"].colnames) - {"objid"}:
        np.testing.assert_array_equal(truths["griz"][column], truths["grz"][column], err_msg=column)
    catalog = legacy.read_tractor(dr5_file(surveys["griz"] / "dr5", "tractor", BRICK), GRIZ)
    assert catalog.attrs["release"] == "dr10"
    # i is measured, between r and z in magnitude for most sources; without it DR10's i columns are zero.
    assert (catalog["flux_i"] > 0).mean() > 0.9
    between = (catalog["mag_dered_i"] - catalog["mag_dered_r"]) * (catalog["mag_dered_i"] - catalog["mag_dered_z"])
    assert (between[catalog["flux_ivar_i"] > 0] < 0.5).mean() > 0.8
    without = Table.read(dr5_file(surveys["grz"] / "dr5", "tractor", BRICK))
    assert not np.any(without["flux_i"])


@pytest.mark.parametrize("kind", ["real", "sim"])
def test_griz_stamps_carry_eight_channels_with_the_i_images_and_inverse_variances(surveys, tmp_path, kind):
    out = tmp_path / f"{kind}.h5"
    run_cutouts(settings_for(surveys["griz"], kind), BRICK, out)
    stamps, catalog, attributes = load(out)
    assert list(attributes["channels"]) == channel_names(GRIZ) == ["g", "r", "i", "z", "ivar_g", "ivar_r", "ivar_i",
                                                                     "ivar_z"]  # fmt: skip
    assert list(attributes["bands"]) == list(GRIZ)
    assert stamps.shape[1:] == (64, 64, 8) and len(stamps) > 3
    coadd = legacy.read_coadd(dr5_file(surveys["griz"] / "dr5", "coadd_dir", BRICK), BRICK, ("i",))
    # The i channels are the i coadd's pixels (the reals'), with the i band's noise level.
    assert np.median(stamps[..., 6]) == pytest.approx(np.median(coadd.inverse_variance[0]), rel=0.5)
    assert np.all(np.isfinite(stamps[..., 2])) and np.std(stamps[..., 2]) > 0
    assert {"mag_dered_i", "flux_i"} <= set(catalog.columns)


def test_a_brick_without_an_i_coadd_is_refused_naming_the_brick_and_band(surveys, tmp_path):
    with pytest.raises(RealfakeError) as error:
        run_cutouts(settings_for(surveys["grz"], "real"), BRICK, tmp_path / "real.h5")
    coadd_dir = dr5_file(surveys["grz"] / "dr5", "coadd_dir", BRICK)
    assert str(error.value).startswith(
        f"brick {BRICK} has no coverage in band i (neither {coadd_dir}/legacysurvey-{BRICK}-image-i.fits.fz nor "
        f"{coadd_dir}/legacysurvey-{BRICK}-invvar-i.fits.fz exists)"
    )
    assert "leave i out of the bands, or the brick out of the brick list" in str(error.value)
    assert not (tmp_path / "real.h5").exists()


def test_an_i_coadd_with_no_coverage_is_refused_not_zero_filled(surveys, tmp_path):
    coadd_dir = tmp_path / "coadd"
    shutil.copytree(dr5_file(surveys["griz"] / "dr5", "coadd_dir", BRICK), coadd_dir)
    invvar = coadd_dir / f"legacysurvey-{BRICK}-invvar-i.fits.fz"
    with fits.open(invvar) as hdus:
        hdus[1].data = np.zeros_like(hdus[1].data)
        hdus.writeto(invvar, overwrite=True)
    with pytest.raises(RealfakeError, match=rf"^brick {BRICK} has no coverage in band i \({invvar} is 0 everywhere\)"):
        legacy.read_coadd(coadd_dir, BRICK, GRIZ)
    assert legacy.read_coadd(coadd_dir, BRICK, ("g", "r", "z")).bands == ("g", "r", "z")


def test_fakes_not_injected_in_i_are_refused_naming_the_catalog(surveys, tmp_path):
    root = tmp_path / "survey"
    shutil.copytree(surveys["griz"], root)
    injected = Path(legacysim_file(root / "legacysim", "injected", BRICK, RUN))
    table = Table.read(injected)
    table.remove_column("flux_i")
    table.write(injected, overwrite=True)
    with pytest.raises(RealfakeError) as error:
        run_cutouts(settings_for(root, "sim"), BRICK, tmp_path / "sim.h5")
    assert str(error.value) == (
        f"fake catalog {injected} has no flux in band(s) i (it has g, r, z): the fakes were not injected there; "
        "leave i out of the bands"
    )


def test_bands_in_gives_the_survey_bands_of_a_catalogs_columns_in_wavelength_order():
    assert bands_in(["flux_z", "flux_i", "flux_g", "flux_r", "flux_ivar_g"]) == GRIZ
    assert bands_in(["gflux", "rflux", "zflux"], "{band}flux") == ("g", "r", "z")


@pytest.mark.parametrize(
    ("bands", "message"),
    [
        (("g", "q"), "unknown band(s) q; the surveys have g, r, i, z"),
        (("i", "i"), "bands 'ii': give each of g, r, i, z at most once, at least one"),
    ],
)
def test_the_cutouts_bands_are_any_of_griz_each_once(bands, message):
    with pytest.raises(RealfakeError) as error:
        CutoutSettings(kind="real", dr5_dir=Path("dr5"), bands=bands, selection="all_primary")
    assert str(error.value) == message
