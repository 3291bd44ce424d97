"""legacysim runs as the fakes' side: the run layout, the injected catalog (0-indexed bx, by; collided rows) and
the reader's table, read from the mock survey written in legacysim's layout beside the same survey in obiwan's."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from realfake.errors import RealfakeError
from realfake.mock.brick import COLLIDED_PER_RUN
from realfake.mock.files import write_table
from realfake.mock.settings import MockSettings
from realfake.mock.survey import run_mock_survey
from realfake.paths import legacysim_file
from realfake.survey import legacy, legacysim, runs
from realfake.survey.obiwan import read_simcat

BRICK = "1238p245"
RUNS = ["file0_rs0_skip0", "file0_rs8_skip0"]


def mock(root: Path, injector: str) -> Path:
    run_mock_survey(
        MockSettings(
            out=root, bricks=1, size=256, seed=3, rsdirs=2, fakes_per_rsdir=8, release="dr9", injector=injector
        )
    )
    return root


@pytest.fixture(scope="module")
def surveys(tmp_path_factory) -> dict[str, Path]:
    """The same mock survey (seed, release) with its fakes in each injector's layout."""
    return {injector: mock(tmp_path_factory.mktemp(injector), injector) for injector in ("obiwan", "legacysim")}


def test_runs_are_the_run_dirs_at_the_top_holding_the_bricks_injected_catalog_in_order(surveys, tmp_path):
    tree = tmp_path / "legacysim"
    shutil.copytree(surveys["legacysim"] / "legacysim", tree)
    # Numeric order (rs8 before rs10), other names ignored, a run without this brick's catalog left out.
    shutil.copytree(tree / "file0_rs8_skip0", tree / "file0_rs10_skip0")
    shutil.copytree(tree / "file0_rs8_skip0", tree / "file0_rs8_skip1")
    (tree / "file0_rs10_skip0" / "sim" / "123" / f"injected-{BRICK}.fits").rename(tree / "file0_rs10_skip0" / "x")
    shutil.copytree(tree / "file0_rs8_skip0", tree / "notes_rs8")
    found = runs.find_runs(tree, BRICK, "legacysim")
    assert [run.name for run in found] == ["file0_rs0_skip0", "file0_rs8_skip0", "file0_rs8_skip1"]
    first = found[0]
    assert first.layout == "legacysim"
    assert first.simcat_path == tree / "file0_rs0_skip0" / "sim" / "123" / f"injected-{BRICK}.fits"
    assert first.tractor_path == tree / "file0_rs0_skip0" / "tractor" / "123" / f"tractor-{BRICK}.fits"
    assert first.coadd_dir == tree / "file0_rs0_skip0" / "coadd" / "123" / BRICK
    # The obiwan reader finds nothing there, and the legacysim one nothing in an obiwan tree.
    assert runs.find_runs(tree, BRICK, "obiwan") == []
    assert runs.find_runs(surveys["obiwan"] / "obiwan", BRICK, "legacysim") == []


def test_the_injected_catalog_reads_as_a_simcat_without_its_collided_rows(surveys):
    simcats = [read_simcat(run.simcat_path) for run in runs.find_runs(surveys["obiwan"] / "obiwan", BRICK, "obiwan")]
    for run_name, simcat in zip(RUNS, simcats, strict=True):
        path = Path(legacysim_file(surveys["legacysim"] / "legacysim", "injected", BRICK, run_name))
        stored = legacy.read_fits_table(path)
        assert stored["collided"].sum() == COLLIDED_PER_RUN
        injected = legacysim.read_injected(path, {"g": 0.9, "r": 0.95, "z": 0.97})
        assert injected.attrs["collided"] == COLLIDED_PER_RUN and injected.attrs["schema"] == "legacysim"
        # Only the rows injected in this run, the fakes the obiwan layout's simcat lists.
        assert len(injected) == len(stored) - COLLIDED_PER_RUN == len(simcat)
        assert (injected["id"].to_numpy() == simcat["id"].to_numpy()).all()
        assert not np.isin(injected["id"], stored["id"][stored["collided"]]).any()
        # bx, by are 0-indexed: the simcat's 1-indexed x, y less one.
        np.testing.assert_allclose(injected["x"], simcat["x"], atol=1e-3)
        np.testing.assert_allclose(injected["y_fits"], simcat["y_fits"], atol=1e-3)
        for column in ("ra", "dec", "flux_g", "flux_z", "rhalf", "sersic_n", "e1", "e2"):
            np.testing.assert_allclose(injected[column], simcat[column], rtol=1e-6, err_msg=column)
        assert injected["mw_transmission_r"].eq(0.95).all()
        np.testing.assert_allclose(injected["flux_dered_r"], injected["flux_r"] / 0.95)


def test_without_transmissions_given_the_injected_catalog_has_none(surveys):
    path = legacysim_file(surveys["legacysim"] / "legacysim", "injected", BRICK, RUNS[0])
    injected = legacysim.read_injected(path)
    assert injected["mw_transmission_g"].isna().all() and injected["mag_dered_g"].isna().all()


def test_a_missing_or_incomplete_injected_catalog_is_an_error_naming_it(surveys, tmp_path):
    missing = tmp_path / "file0_rs0_skip0" / "sim" / "123" / f"injected-{BRICK}.fits"
    with pytest.raises(RealfakeError, match=f"file not found: {missing}"):
        legacysim.read_injected(missing)
    source = legacysim_file(surveys["legacysim"] / "legacysim", "injected", BRICK, RUNS[0])
    table = legacy.read_fits_table(source)
    stripped = tmp_path / "stripped.fits"
    write_table(stripped, {name: ("D", table[name].to_numpy(np.float64)) for name in ("ra", "dec", "bx", "by")})
    with pytest.raises(RealfakeError, match=rf"{stripped} lacks column\(s\) id, flux_g"):
        legacysim.read_injected(stripped)


def test_a_tree_is_told_by_its_top(surveys, tmp_path):
    legacysim_tree, obiwan_tree = surveys["legacysim"] / "legacysim", surveys["obiwan"] / "obiwan"
    assert runs.tree_problem(legacysim_tree, "legacysim") is None
    assert runs.tree_problem(obiwan_tree, "obiwan") is None
    assert "has no legacysim run dir" in runs.tree_problem(obiwan_tree, "legacysim")
    assert "a legacysim tree" in runs.tree_problem(legacysim_tree, "obiwan")
    with pytest.raises(RealfakeError, match="unknown injector 'balrog'"):
        runs.tree_problem(legacysim_tree, "balrog")


def test_dr9_era_obiwan_runs_and_2018_rs_dirs_of_one_brick_are_refused(surveys, tmp_path):
    tree = tmp_path / "obiwan"
    shutil.copytree(surveys["obiwan"] / "obiwan", tree)
    randoms = tree / "obiwan" / "123" / BRICK / "file0_rs0_skip0" / f"randoms-{BRICK}.fits"
    randoms.parent.mkdir(parents=True)
    shutil.copy2(legacysim_file(surveys["legacysim"] / "legacysim", "injected", BRICK, RUNS[0]), randoms)
    with pytest.raises(RealfakeError, match=f"brick {BRICK} has obiwan outputs in both layouts .*DR9-era runs"):
        runs.find_runs(tree, BRICK, "obiwan")
    shutil.rmtree(tree / "obiwan" / "123" / BRICK / "rs0")
    shutil.rmtree(tree / "obiwan" / "123" / BRICK / "rs8")
    (found,) = runs.find_runs(tree, BRICK, "obiwan")
    assert (found.name, found.layout, found.simcat_path) == ("file0_rs0_skip0", "dr9", randoms)
    assert found.tractor_path == tree / "tractor" / "123" / BRICK / "file0_rs0_skip0" / f"tractor-{BRICK}.fits"
    assert runs.read_fake_catalog(found).attrs["collided"] == COLLIDED_PER_RUN
