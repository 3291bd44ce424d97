"""Cutouts of fakes injected by legacysim: the same stamps as from obiwan's layout of the same mock survey, the
collided rows skipped and counted, the transmissions from the run's re-fit, reals cut from a run's coadds."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fixtures.tinysurvey import HALF, load

from realfake.cutouts import CutoutSettings, input_files, run_cutouts
from realfake.errors import RealfakeError
from realfake.mock.brick import COLLIDED_PER_RUN
from realfake.mock.settings import MockSettings
from realfake.mock.survey import run_mock_survey
from realfake.paths import legacysim_file
from realfake.survey import legacy

BRICK = "1238p245"
RUNS = ["file0_rs0_skip0", "file0_rs8_skip0"]
FAKES_PER_RUN = 8


@pytest.fixture(scope="module")
def surveys(tmp_path_factory) -> dict[str, Path]:
    """The same mock survey (seed, release) with its fakes in each injector's layout."""
    roots = {}
    for injector in ("obiwan", "legacysim"):
        roots[injector] = tmp_path_factory.mktemp(injector)
        settings = MockSettings(
            out=roots[injector], bricks=1, size=256, seed=3, rsdirs=2, fakes_per_rsdir=FAKES_PER_RUN,
            release="dr9", injector=injector,
        )  # fmt: skip
        run_mock_survey(settings)
    return roots


def settings_for(root: Path, injector: str, **overrides) -> CutoutSettings:
    return CutoutSettings(kind="sim", dr5_dir=root / "dr5", obiwan_dir=root / injector, injector=injector, **overrides)


def test_sim_stamps_are_those_of_the_obiwan_layout_with_the_collided_rows_skipped(surveys, tmp_path):
    made = {}
    for injector, root in surveys.items():
        counts = run_cutouts(settings_for(root, injector), BRICK, tmp_path / f"{injector}.h5")
        made[injector] = (counts, *load(tmp_path / f"{injector}.h5"))
    (obiwan_counts, obiwan_stamps, obiwan_catalog, _) = made["obiwan"]
    (counts, stamps, catalog, attributes) = made["legacysim"]
    # The collided rows are neither read as fakes nor cut (they were not injected: empty sky).
    assert counts.sources_read == 2 * FAKES_PER_RUN == obiwan_counts.sources_read
    assert list(attributes["collided"]) == [COLLIDED_PER_RUN, COLLIDED_PER_RUN]
    assert len(stamps) > 5
    # Same pixels, same positions: the same stamps; the catalogs differ only in the rs dir's (run's) name.
    np.testing.assert_array_equal(stamps, obiwan_stamps)
    assert list(attributes["rsdirs"]) == RUNS and attributes["injector"] == "legacysim"
    assert set(catalog["rsdir"]) <= set(RUNS)
    renamed = obiwan_catalog.assign(rsdir=obiwan_catalog["rsdir"].map({"rs0": RUNS[0], "rs8": RUNS[1]}))
    assert renamed.equals(catalog)
    # Fakes matched to their re-fit through 0-indexed bx, by as through the simcat's 1-indexed x, y.
    assert catalog["measured"].sum() > 0
    # The injected catalog has no transmissions: each run's are its re-fit's.
    assert [source.split(": ")[1] for source in attributes["mw_transmission_source"]] == [
        f"median of {legacysim_file(surveys['legacysim'] / 'legacysim', 'tractor', BRICK, run)}" for run in RUNS
    ]


def test_each_fake_is_at_its_stamp_centre(surveys, tmp_path):
    """The injected light (run stamp minus the same window of the DR5 coadd) peaks at the stamp centre."""
    root = surveys["legacysim"]
    run_cutouts(settings_for(root, "legacysim"), BRICK, tmp_path / "sim.h5")
    stamps, catalog, _ = load(tmp_path / "sim.h5")
    dr5 = legacy.read_coadd(root / "dr5" / "coadd" / "123" / BRICK, BRICK)
    offsets = np.arange(-HALF, HALF)
    bright = catalog.index[catalog["flux_z"] > 1]
    assert len(bright) >= 3
    for index in bright:
        row = catalog.loc[index]
        injected = stamps[index, :, :, 2] - dr5.image[2][np.ix_(row["centre_y"] + offsets, row["centre_x"] + offsets)]
        peak = np.unravel_index(np.argmax(injected[HALF - 8 : HALF + 8, HALF - 8 : HALF + 8]), (16, 16))
        assert max(abs(peak[0] - 8), abs(peak[1] - 8)) <= 1, (index, peak)


def test_without_the_runs_re_fits_the_transmissions_are_the_dr5_catalogs(surveys, tmp_path):
    root = tmp_path / "bare"
    shutil.copytree(surveys["legacysim"], root)
    for run in RUNS:
        shutil.rmtree(root / "legacysim" / run / "tractor")
    run_cutouts(settings_for(root, "legacysim"), BRICK, tmp_path / "sim.h5")
    _, catalog, attributes = load(tmp_path / "sim.h5")
    dr5_tractor = root / "dr5" / "tractor" / "123" / f"tractor-{BRICK}.fits"
    assert list(attributes["mw_transmission_source"]) == [f"{run}: median of {dr5_tractor}" for run in RUNS]
    assert not catalog["measured"].any()
    assert input_files(settings_for(root, "legacysim"), BRICK).count(str(dr5_tractor)) == 1


def test_reals_cut_from_the_runs_are_those_cut_from_the_rs_dirs(surveys, tmp_path):
    made = {}
    for injector, root in surveys.items():
        settings = CutoutSettings(
            kind="real", dr5_dir=root / "dr5", obiwan_dir=root / injector, injector=injector,
            selection="all_primary", real_source="rsdir",
        )  # fmt: skip
        run_cutouts(settings, BRICK, tmp_path / f"{injector}.h5")
        made[injector] = load(tmp_path / f"{injector}.h5")
    stamps, catalog, attributes = made["legacysim"]
    assert len(stamps) > 5 and list(attributes["rsdirs"]) == RUNS
    np.testing.assert_array_equal(stamps, made["obiwan"][0])
    assert list(attributes["reals_per_rsdir"]) == list(made["obiwan"][2]["reals_per_rsdir"])


def test_input_files_are_each_runs_injected_catalog_re_fit_and_coadds(surveys):
    tree = surveys["legacysim"] / "legacysim"
    files = input_files(settings_for(surveys["legacysim"], "legacysim"), BRICK)
    expected = [str(surveys["legacysim"] / "dr5" / "survey-bricks.fits")]
    for run in RUNS:
        expected += [legacysim_file(tree, filetype, BRICK, run) for filetype in ("injected", "tractor")]
    for run in RUNS:
        expected += [legacysim_file(tree, kind, BRICK, run, band) for band in "grz" for kind in ("image", "invvar")]
    assert files == expected
    assert all(Path(path).is_file() for path in files)


def test_a_brick_with_no_run_is_an_error_naming_where_it_looked(surveys, tmp_path):
    (tmp_path / "empty").mkdir()
    settings = CutoutSettings(kind="sim", dr5_dir=surveys["legacysim"] / "dr5", obiwan_dir=tmp_path / "empty",
                              injector="legacysim")  # fmt: skip
    expected = f"brick {BRICK} has no legacysim run \\(file<F>_rs<R>_skip<S>/sim/123/injected-{BRICK}.fits\\)"
    with pytest.raises(RealfakeError, match=expected):
        run_cutouts(settings, BRICK, tmp_path / "sim.h5")
    with pytest.raises(RealfakeError, match=expected):
        input_files(settings, BRICK)
    # The obiwan reader on a legacysim tree finds no rs dir either.
    obiwan_reader = CutoutSettings(
        kind="sim", dr5_dir=surveys["legacysim"] / "dr5", obiwan_dir=surveys["legacysim"] / "legacysim"
    )
    with pytest.raises(RealfakeError, match="has no obiwan rs dir"):
        run_cutouts(obiwan_reader, BRICK, tmp_path / "sim.h5")


def test_an_unknown_injector_is_refused_naming_it(tmp_path):
    with pytest.raises(RealfakeError, match="injector.*balrog"):
        CutoutSettings(kind="sim", dr5_dir=tmp_path, obiwan_dir=tmp_path, injector="balrog")


def dr9_obiwan_tree(legacysim_tree: Path, out: Path) -> Path:
    """The runs of a legacysim tree moved into the DR9-era obiwan layout (adematti/obiwan): coadd/, obiwan/ and
    tractor/ at the top with the runs below the brick, and the injected catalog named randoms-<brick>.fits."""
    for run in RUNS:
        moves = {
            Path(legacysim_file(legacysim_tree, "coadd_dir", BRICK, run)): out / "coadd" / "123" / BRICK / run,
            Path(legacysim_file(legacysim_tree, "injected", BRICK, run)): out
            / "obiwan" / "123" / BRICK / run / f"randoms-{BRICK}.fits",
            Path(legacysim_file(legacysim_tree, "tractor", BRICK, run)): out
            / "tractor" / "123" / BRICK / run / f"tractor-{BRICK}.fits",
        }  # fmt: skip
        for source, target in moves.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target)
            else:
                shutil.copy2(source, target)
    return out


def test_the_dr9_era_obiwan_layout_reads_as_legacysims_runs(surveys, tmp_path):
    tree = dr9_obiwan_tree(surveys["legacysim"] / "legacysim", tmp_path / "obiwan-dr9")
    settings = CutoutSettings(kind="sim", dr5_dir=surveys["legacysim"] / "dr5", obiwan_dir=tree)
    counts = run_cutouts(settings, BRICK, tmp_path / "dr9.h5")
    run_cutouts(settings_for(surveys["legacysim"], "legacysim"), BRICK, tmp_path / "legacysim.h5")
    stamps, catalog, attributes = load(tmp_path / "dr9.h5")
    legacysim_stamps, legacysim_catalog, _ = load(tmp_path / "legacysim.h5")
    assert counts.sources_read == 2 * FAKES_PER_RUN and list(attributes["collided"]) == [COLLIDED_PER_RUN] * 2
    assert list(attributes["rsdirs"]) == RUNS
    np.testing.assert_array_equal(stamps, legacysim_stamps)
    assert catalog.equals(legacysim_catalog)
    assert str(tree / "obiwan" / "123" / BRICK / RUNS[0] / f"randoms-{BRICK}.fits") in input_files(settings, BRICK)
