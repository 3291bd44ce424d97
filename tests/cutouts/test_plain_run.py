"""Reals cut from a plain legacypipe run of legacysim (``real_source="run"``): the run's own sources in its own
coadds, the run left out of the fakes' runs, read from a legacysim mock survey with its plain run
(``MockSettings.plain_run``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fixtures.tinysurvey import HALF, cutouts_cli, load

from realfake.cutouts import CutoutSettings, expected_attributes, input_files, run_cutouts
from realfake.errors import RealfakeError
from realfake.formats.cutouts import catalog_columns, cutouts_file_is_complete
from realfake.mock.layout import MOCK_PLAIN_RUN
from realfake.mock.settings import MockSettings
from realfake.mock.survey import run_mock_survey
from realfake.paths import dr5_file, legacysim_file
from realfake.survey import legacy, legacysim, runs

BRICK = "1238p245"
RUNS = ["file0_rs0_skip0", "file0_rs8_skip0"]
SKY_OFFSET = 0.1  # sky sigmas: the background mismatch's standard strength
# Absolute quantization of the compressed images (realfake.mock.files.IMAGE_QUANTIZE): two dithered roundings.
QUANTIZATION = 1e-4


@pytest.fixture(scope="module")
def surveys(tmp_path_factory) -> dict[str, Path]:
    """A legacysim mock survey with its plain run, without a processing mismatch and with the background one."""
    roots = {}
    for mismatch in ("none", "background"):
        roots[mismatch] = tmp_path_factory.mktemp(mismatch)
        settings = MockSettings(
            out=roots[mismatch], bricks=1, size=256, seed=3, rsdirs=2, fakes_per_rsdir=8, release="dr9",
            injector="legacysim", mismatch=mismatch, plain_run=True,
        )  # fmt: skip
        run_mock_survey(settings)
    return roots


def run_settings(root: Path, kind: str = "real", **overrides) -> CutoutSettings:
    values = dict(
        kind=kind, dr5_dir=root / "dr5", obiwan_dir=root / "legacysim", injector="legacysim",
        selection="all_primary", real_source="run", real_run=MOCK_PLAIN_RUN,
    )  # fmt: skip
    return CutoutSettings(**{**values, **overrides})


def dr5_settings(root: Path) -> CutoutSettings:
    return CutoutSettings(kind="real", dr5_dir=root / "dr5", selection="all_primary")


def test_without_a_processing_mismatch_the_plain_runs_reals_are_the_dr5_trees(surveys, tmp_path):
    root = surveys["none"]
    counts = run_cutouts(run_settings(root), BRICK, tmp_path / "run.h5")
    run_cutouts(dr5_settings(root), BRICK, tmp_path / "dr5.h5")
    stamps, catalog, attributes = load(tmp_path / "run.h5")
    dr5_stamps, dr5_catalog, dr5_attributes = load(tmp_path / "dr5.h5")
    assert counts.sources_written > 5
    # The same sources (the run's tractor catalog is legacypipe's fit of them) in the same pixels, named by the
    # run they are cut from.
    assert set(catalog["rsdir"]) == {MOCK_PLAIN_RUN} and set(dr5_catalog["rsdir"]) == {""}
    assert catalog.drop(columns="rsdir").equals(dr5_catalog.drop(columns="rsdir"))
    np.testing.assert_array_equal(stamps, dr5_stamps)
    assert attributes["real_source"] == "run" and attributes["real_run"] == MOCK_PLAIN_RUN
    assert attributes["release"] == "dr9" == dr5_attributes["release"]
    assert attributes["injector"] == "legacysim" and attributes["obiwan_dir"] == str(root / "legacysim")
    # Read from the plain run only: its tractor catalog, empty injected catalog and coadds, none of DR5's.
    tree = root / "legacysim"
    assert list(attributes["inputs"]) == [
        dr5_file(root / "dr5", "brick_table"),
        legacysim_file(tree, "tractor", BRICK, MOCK_PLAIN_RUN),
        legacysim_file(tree, "injected", BRICK, MOCK_PLAIN_RUN),
        *(legacysim_file(tree, kind, BRICK, MOCK_PLAIN_RUN, band) for band in "grz" for kind in ("image", "invvar")),
    ]
    assert input_files(run_settings(root), BRICK) == list(attributes["inputs"])


def test_under_background_the_plain_runs_reals_carry_the_runs_sky_offset(surveys, tmp_path):
    root = surveys["background"]
    run_cutouts(run_settings(root), BRICK, tmp_path / "run.h5")
    run_cutouts(dr5_settings(root), BRICK, tmp_path / "dr5.h5")
    stamps, catalog, _ = load(tmp_path / "run.h5")
    dr5_stamps, dr5_catalog, _ = load(tmp_path / "dr5.h5")
    assert catalog.drop(columns="rsdir").equals(dr5_catalog.drop(columns="rsdir")) and len(stamps) > 5
    images, inverse_variances = stamps[..., :3], stamps[..., 3:]
    # The same inverse variance, and the images offset by a tenth of the sky sigma wherever there is coverage.
    np.testing.assert_array_equal(inverse_variances, dr5_stamps[..., 3:])
    covered = inverse_variances > 0
    expected = SKY_OFFSET / np.sqrt(inverse_variances[covered])
    np.testing.assert_allclose((images - dr5_stamps[..., :3])[covered], expected, rtol=0, atol=QUANTIZATION)
    # An offset the tolerance tells from none: at least a few quantization steps everywhere.
    assert expected.min() > 2 * QUANTIZATION and np.median(expected) > 5 * QUANTIZATION


def fake_free(coadd: legacy.Coadd, fakes_x: np.ndarray, fakes_y: np.ndarray, margin: int) -> np.ndarray:
    """(H, W) True at pixels more than ``margin`` pixels (x or y) from every fake."""
    rows, columns = np.indices(coadd.image.shape[1:])
    free = np.ones(rows.shape, dtype=bool)
    for x, y in zip(fakes_x, fakes_y, strict=True):
        free &= (np.abs(columns - x) > margin) | (np.abs(rows - y) > margin)
    return free


def test_the_plain_runs_sky_is_the_fakes_runs_sky(surveys):
    """Away from its fakes a run's coadd is the plain run's: the same processing, whatever the mismatch."""
    tree = surveys["background"] / "legacysim"
    plain = legacy.read_coadd(legacysim_file(tree, "coadd_dir", BRICK, MOCK_PLAIN_RUN), BRICK)
    dr5 = legacy.read_coadd(dr5_file(surveys["background"] / "dr5", "coadd_dir", BRICK), BRICK)
    for run in runs.find_runs(tree, BRICK, "legacysim", exclude=(MOCK_PLAIN_RUN,)):
        coadd = legacy.read_coadd(run.coadd_dir, BRICK)
        fakes = runs.read_fake_catalog(run)
        free = fake_free(coadd, fakes["x"].to_numpy(), fakes["y"].to_numpy(), 2 * HALF)
        assert free.sum() > 1000
        np.testing.assert_allclose(coadd.image[:, free], plain.image[:, free], rtol=0, atol=QUANTIZATION)
        # ... and not the DR5 tree's: the offset is a tenth of a sky sigma, several quantization steps.
        assert np.median(coadd.image[:, free] - dr5.image[:, free]) > 5 * QUANTIZATION


def test_the_plain_run_is_never_read_as_a_run_of_fakes(surveys, tmp_path):
    root = surveys["none"]
    tree = root / "legacysim"
    # legacysim writes an empty injected catalog for a plain run: on its own it looks like a run with no fakes.
    injected = legacysim.read_injected(Path(legacysim_file(tree, "injected", BRICK, MOCK_PLAIN_RUN)))
    assert len(injected) == 0
    assert [run.name for run in runs.find_runs(tree, BRICK, "legacysim")] == [*RUNS, MOCK_PLAIN_RUN]
    # Named as the reals' run, it is left out of the fakes' runs, in planning and in the file.
    sim = run_settings(root, kind="sim")
    assert sim.excluded_runs == (MOCK_PLAIN_RUN,)
    counts = run_cutouts(sim, BRICK, tmp_path / "sim.h5")
    stamps, catalog, attributes = load(tmp_path / "sim.h5")
    assert list(attributes["rsdirs"]) == RUNS and set(catalog["rsdir"]) <= set(RUNS)
    assert counts.sources_read == 2 * 8 and len(stamps) > 5
    assert attributes["real_run"] == MOCK_PLAIN_RUN
    assert not [path for path in attributes["inputs"] if f"/{MOCK_PLAIN_RUN}/" in path]
    assert not [path for path in input_files(sim, BRICK) if f"/{MOCK_PLAIN_RUN}/" in path]
    # The fakes' file records the run it left out: one made without leaving it out (which took the plain run
    # for a run with no fakes) is not this one.
    assert cutouts_file_is_complete(tmp_path / "sim.h5", expected_attributes(sim, BRICK), catalog_columns("grz"))
    unaware = CutoutSettings(kind="sim", dr5_dir=root / "dr5", obiwan_dir=tree, injector="legacysim")
    run_cutouts(unaware, BRICK, tmp_path / "unaware.h5")
    assert list(load(tmp_path / "unaware.h5")[2]["rsdirs"]) == [*RUNS, MOCK_PLAIN_RUN]
    assert not cutouts_file_is_complete(
        tmp_path / "unaware.h5", expected_attributes(sim, BRICK), catalog_columns("grz")
    )


def test_a_run_that_injected_fakes_is_refused_as_the_real_run(surveys, tmp_path):
    settings = run_settings(surveys["none"], real_run=RUNS[0])
    injected = legacysim_file(surveys["none"] / "legacysim", "injected", BRICK, RUNS[0])
    with pytest.raises(RealfakeError, match=f"real run {RUNS[0]} injected 8 fakes into brick {BRICK} \\({injected}\\)"):
        run_cutouts(settings, BRICK, tmp_path / "real.h5")
    assert not (tmp_path / "real.h5").exists()


def test_a_real_run_the_tree_does_not_have_is_an_error_naming_the_key_and_the_runs(surveys, tmp_path):
    settings = run_settings(surveys["none"], real_run="file7_rs0_skip0")
    message = (
        "real run file7_rs0_skip0 (config cutouts.real_run; flag --real-run) is not a run dir of "
        f"{surveys['none'] / 'legacysim'}; its runs: {', '.join([*RUNS, MOCK_PLAIN_RUN])}"
    )
    with pytest.raises(RealfakeError, match=message.replace("(", "\\(").replace(")", "\\)")):
        run_cutouts(settings, BRICK, tmp_path / "real.h5")


def test_a_brick_the_plain_run_did_not_process_is_an_error_naming_the_file(surveys, tmp_path):
    root = tmp_path / "survey"
    shutil.copytree(surveys["none"], root)
    tractor = Path(legacysim_file(root / "legacysim", "tractor", BRICK, MOCK_PLAIN_RUN))
    tractor.unlink()
    with pytest.raises(RealfakeError, match=f"brick {BRICK} has no tractor catalog in the real run .*{tractor}"):
        run_cutouts(run_settings(root), BRICK, tmp_path / "real.h5")


def test_the_cli_cuts_the_reals_from_the_plain_run_and_refuses_it_without_legacysim(surveys, tmp_path, capsys):
    root = surveys["none"]
    arguments = ["cutouts", "--kind", "real", "--brick", BRICK, "--dr5-dir", str(root / "dr5"),
                 "--obiwan-dir", str(root / "legacysim"), "--selection", "all_primary", "--real-source", "run",
                 "--real-run", MOCK_PLAIN_RUN]  # fmt: skip
    status, stderr = cutouts_cli([*arguments, "--out", str(tmp_path / "obiwan.h5")], capsys)
    assert status == 2
    assert stderr.strip().splitlines()[-1] == (
        "realfake cutouts: error: real source run cuts the reals from a plain legacypipe run of legacysim: it needs "
        "injector legacysim, not obiwan (config cutouts.real_source and input.injector, or mock.injector; flags "
        "--real-source and --injector)"
    )
    assert not (tmp_path / "obiwan.h5").exists()
    status, stderr = cutouts_cli([*arguments, "--injector", "legacysim", "--out", str(tmp_path / "run.h5")], capsys)
    assert status == 0, stderr
    assert load(tmp_path / "run.h5")[2]["real_run"] == MOCK_PLAIN_RUN


REFUSALS = [
    (dict(injector="obiwan"), "real source run .* needs injector legacysim, not obiwan .*config cutouts.real_source"),
    (dict(real_run=None), "real source run needs the name of the plain run .*config cutouts.real_run"),
    (dict(real_run="plain"), "real run 'plain' is not a legacysim run dir name, file<F>_rs<R>_skip<S> .*real_run"),
    (dict(obiwan_dir=None), "real cutouts with --real-source run need the legacysim output tree \\(--obiwan-dir"),
]


@pytest.mark.parametrize(("overrides", "message"), REFUSALS)
def test_settings_of_real_source_run_that_cannot_work_are_refused_naming_the_keys(tmp_path, overrides, message):
    with pytest.raises(RealfakeError, match=message):
        run_settings(tmp_path, **overrides)


def test_a_named_real_run_is_left_out_of_the_fakes_runs_whatever_the_real_source(tmp_path):
    """So that one survey with its plain run serves both arms of the same-image control (reals from the release,
    then from the plain run) without cutting the fakes again."""
    trees = dict(dr5_dir=tmp_path, obiwan_dir=tmp_path, injector="legacysim", real_run=MOCK_PLAIN_RUN)
    sim = CutoutSettings(kind="sim", **trees)
    assert sim.excluded_runs == (MOCK_PLAIN_RUN,)
    assert expected_attributes(sim, BRICK)["real_run"] == MOCK_PLAIN_RUN
    assert expected_attributes(sim, BRICK) == expected_attributes(
        CutoutSettings(kind="sim", **trees, real_source="run"), BRICK
    )
    # Reals from the release's tree read no run: the plain run's name is not theirs to record.
    assert "real_run" not in expected_attributes(CutoutSettings(kind="real", **trees), BRICK)
    assert CutoutSettings(kind="sim", **{**trees, "real_run": None}).excluded_runs == ()
