"""The mock's plain legacypipe run of legacysim (``MockSettings.plain_run``): written only when asked, in
legacysim's layout, with no fakes, and leaving every other file of the survey as it is without it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from realfake.errors import RealfakeError
from realfake.mock.layout import MOCK_PLAIN_RUN
from realfake.mock.settings import MockSettings
from realfake.mock.survey import run_mock_survey
from realfake.paths import dr5_file, legacysim_file
from realfake.survey import legacy, legacysim

BRICK = "1238p245"


def mock(root: Path, plain_run: bool) -> Path:
    settings = MockSettings(
        out=root, bricks=1, size=256, seed=3, rsdirs=2, fakes_per_rsdir=8, release="dr9", injector="legacysim",
        mismatch="background", plain_run=plain_run,
    )  # fmt: skip
    run_mock_survey(settings)
    return root


@pytest.fixture(scope="module")
def surveys(tmp_path_factory) -> dict[bool, Path]:
    """The same legacysim mock survey without and with its plain run."""
    return {plain_run: mock(tmp_path_factory.mktemp(f"plain{plain_run}"), plain_run) for plain_run in (False, True)}


def files_of(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_the_plain_run_is_written_only_when_asked_and_changes_no_other_file(surveys):
    without, with_plain_run = files_of(surveys[False]), files_of(surveys[True])
    assert not [name for name in without if MOCK_PLAIN_RUN in name]
    added = sorted(set(with_plain_run) - set(without))
    tree = Path("legacysim")
    expected = [
        legacysim_file(tree, "tractor", BRICK, MOCK_PLAIN_RUN),
        legacysim_file(tree, "injected", BRICK, MOCK_PLAIN_RUN),
        *(legacysim_file(tree, kind, BRICK, MOCK_PLAIN_RUN, band) for band in "grz" for kind in ("image", "invvar")),
    ]
    assert added == sorted(expected)
    # Byte for byte the same survey besides: the plain run draws from a stream of its own.
    assert {name: content for name, content in with_plain_run.items() if name not in added} == without


def test_the_plain_run_is_a_legacysim_run_with_no_fakes_and_the_dr5_trees_sources(surveys):
    root = surveys[True]
    tree = root / "legacysim"
    assert legacysim.run_names(tree) == ["file0_rs0_skip0", "file0_rs8_skip0", MOCK_PLAIN_RUN]
    injected_path = Path(legacysim_file(tree, "injected", BRICK, MOCK_PLAIN_RUN))
    assert len(legacysim.read_injected(injected_path)) == 0
    plain = legacy.read_tractor(Path(legacysim_file(tree, "tractor", BRICK, MOCK_PLAIN_RUN)))
    dr5 = legacy.read_tractor(Path(dr5_file(root / "dr5", "tractor", BRICK)))
    assert plain.attrs["release"] == "dr9" and plain.equals(dr5)
    # Its coadds are a run's: the runs' header cards, the DR5 tree's WCS and inverse variance.
    plain_coadd = legacy.read_coadd(legacysim_file(tree, "coadd_dir", BRICK, MOCK_PLAIN_RUN), BRICK)
    dr5_coadd = legacy.read_coadd(dr5_file(root / "dr5", "coadd_dir", BRICK), BRICK)
    np.testing.assert_array_equal(plain_coadd.inverse_variance, dr5_coadd.inverse_variance)
    assert legacy.same_wcs(plain_coadd.wcs, dr5_coadd.wcs)
    header = fits.getheader(legacysim_file(tree, "image", BRICK, MOCK_PLAIN_RUN, "r"), 1)
    assert header["MISMATCH"] == "background" and header["STRENGTH"] == 0.1


def test_a_plain_run_needs_the_legacysim_layout(tmp_path):
    with pytest.raises(RealfakeError, match="--plain-run needs --injector legacysim, not obiwan .*mock.plain_run"):
        MockSettings(out=tmp_path, plain_run=True)
