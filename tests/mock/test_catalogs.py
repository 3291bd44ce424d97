"""The mock's tractor catalogs in each release's schema (mock.release): DR5 as before, DR9 and DR10 as legacypipe
writes them, and the fakes selected in that schema, as the cutouts stage selects the reals."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from realfake.cli import main
from realfake.mock.brick import brick_observing, brick_wcs, tractor_columns
from realfake.mock.catalogs import DUPLICATES, release_columns
from realfake.mock.fakes import draw_fakes
from realfake.mock.files import write_table
from realfake.mock.layout import mock_bricks, seed_sequence
from realfake.mock.population import draw_truth, measure
from realfake.mock.settings import MockSettings
from realfake.mock.survey import run_mock_survey
from realfake.survey import legacy, obiwan
from realfake.survey.selection import select

# Seed 7 at 256 pixels: the brick's catalog has PSF, REX, EXP, DEV and COMP sources (no COMP among the fakes).
SETTINGS = dict(bricks=1, size=256, seed=7, rsdirs=2, fakes_per_rsdir=10)
# Seed 5 at 256 pixels, ten rs dirs of one fake each: the eighth source of the fake realisations that passes
# elg_padded in DR9 and DR10 is a COMP of measured fracdev 0.16 (a SER of index 1.5 there), which DR5 excludes.
DISK_LIKE_COMPOSITE = dict(bricks=1, size=256, seed=5, rsdirs=10, fakes_per_rsdir=1)
DR5_SHAPES = {"fracdev", "shapeexp_r", "shapeexp_e1", "shapeexp_e2", "shapedev_r", "shapedev_e1", "shapedev_e2"}
SHAPES = {"sersic", "shape_r", "shape_e1", "shape_e2"}
RELEASES = {"dr9": (9010, "I"), "dr10": (10000, "J")}  # release number, maskbits' FITS format
SUB_BLOB = 1 << 16


@pytest.fixture(scope="module")
def mocks(tmp_path_factory) -> dict[str, Path]:
    """The same mock with no release given and with each release."""
    roots = {}
    for release in ("default", "dr5", "dr9", "dr10"):
        root = tmp_path_factory.mktemp(release)
        run_mock_survey(MockSettings(out=root, **SETTINGS, **({} if release == "default" else {"release": release})))
        roots[release] = root
    return roots


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _tractors(root: Path) -> list[Path]:
    """The DR5 tree's tractor catalog and each rs dir's re-fit."""
    paths = sorted(root.rglob("tractor-*.fits"))
    assert len(paths) == 1 + SETTINGS["rsdirs"]
    return paths


def _table(path: Path) -> tuple[fits.ColDefs, dict[str, np.ndarray]]:
    with fits.open(path) as hdus:
        columns = hdus[1].columns
        return columns, {name: np.array(hdus[1].data[name]) for name in columns.names}


def test_dr5_is_the_default_and_keeps_the_dr5_schema(mocks):
    assert _digests(mocks["dr5"]) == _digests(mocks["default"])
    for path in _tractors(mocks["dr5"]):
        columns, values = _table(path)
        assert columns["type"].format == "4A"
        assert DR5_SHAPES <= set(columns.names)
        assert not (SHAPES | {"maskbits", "flux_i"}) & set(columns.names)
        assert set(values["release"]) == {5000}
        assert "COMP" in set(values["type"]) and "DUP" not in set(values["type"])


@pytest.mark.parametrize("release", ["dr9", "dr10"])
def test_a_release_changes_the_catalogs_and_the_rs_dirs_only_through_their_fakes(mocks, release):
    """The DR5 tree's coadds and brick table and the truth are DR5's; an rs dir's simcat and coadds are DR5's
    unless its fakes differ (the fakes are selected in the release's schema, which here, with no disk-like COMP
    among them, keeps DR5's: test_the_fakes_are_the_sources_whose_catalog_in_the_release_passes_elg_padded)."""
    dr5, other = _digests(mocks["dr5"]), _digests(mocks[release])
    assert dr5.keys() == other.keys()
    catalogs = {name for name in dr5 if Path(name).name.startswith("tractor-")}
    assert len(catalogs) == 1 + SETTINGS["rsdirs"]
    assert all(dr5[name] != other[name] for name in catalogs)
    dr5_tree = [name for name in dr5 if not name.startswith("obiwan/") and name not in catalogs]
    assert any(name.endswith(".fits.fz") for name in dr5_tree) and any(name.startswith("truth/") for name in dr5_tree)
    for name in dr5_tree:
        assert dr5[name] == other[name], name
    rs_dir_files = [name for name in dr5 if name.startswith("obiwan/") and name not in catalogs]
    simcats = {Path(name).parent.name: name for name in rs_dir_files if Path(name).name.startswith("simcat-")}
    assert len(simcats) == SETTINGS["rsdirs"]
    for name in rs_dir_files:
        same_fakes = dr5[simcats[Path(name).parent.name]] == other[simcats[Path(name).parent.name]]
        assert (dr5[name] == other[name]) is same_fakes, name


@pytest.mark.parametrize("release", ["dr9", "dr10"])
def test_every_fake_passes_elg_padded_as_its_rs_dirs_catalog_is_read(mocks, release):
    """Each fake's row in its rs dir's re-fit, in the release's schema and read as the cutouts stage reads it,
    passes the selection the real sources pass."""
    root = mocks[release]
    sources = len(legacy.read_tractor(next(root.glob("dr5/tractor/*/tractor-*.fits"))))
    rsdirs = obiwan.find_rsdirs(root / "obiwan", mock_bricks(1)[0].name)
    assert len(rsdirs) == SETTINGS["rsdirs"]
    for rsdir in rsdirs:
        tractor = legacy.read_tractor(rsdir.tractor_path)
        assert tractor.attrs["schema"] == release
        fakes = tractor.iloc[sources:]
        assert len(fakes) == SETTINGS["fakes_per_rsdir"]
        assert select(fakes, "elg_padded").all()


def _fake_realisations(settings: MockSettings, brick, observing):
    """The sky realisations draw_fakes measures for the fakes, in its order: (truth, measured DR5 values, detected)."""
    rng = seed_sequence(settings, brick, "fakes")
    while True:
        truth = draw_truth(rng, settings.size, settings.size)
        measure_rng = np.random.default_rng(int(rng.integers(2**63)))
        yield truth, *measure(measure_rng, truth, observing, settings.bands)


@pytest.mark.parametrize("release", ["dr5", "dr9", "dr10"])
def test_the_fakes_are_the_sources_whose_catalog_in_the_release_passes_elg_padded(tmp_path, release):
    """The fakes of none are the detected sources of the fake realisations that the cutouts stage selects from the
    mock's catalog of the release: each realisation's measured values written as the mock writes its tractor
    catalogs and read back as the cutouts stage reads them. With one fake per rs dir every such source is a fake,
    in draw order. From DR9 on that takes in a disk-like COMP (fracdev < 0.5: a SER of index < 2.5), as it takes
    in such real sources; in DR5 no COMP is selected."""
    settings = MockSettings(out=tmp_path, release=release, **DISK_LIKE_COMPOSITE)
    brick = mock_bricks(1)[0]
    observing = brick_observing(settings, brick)
    fakes, measured = draw_fakes(settings, brick, observing)
    wanted = settings.rsdirs * settings.fakes_per_rsdir
    assert len(fakes) == wanted
    path = tmp_path / "tractor-realisation.fits"
    selected = []
    for truth, values, detected in _fake_realisations(settings, brick, observing):
        columns = tractor_columns(brick, truth, values, brick_wcs(settings, brick), observing.ebv)
        write_table(path, release_columns(columns, release, len(truth)))
        catalog = legacy.read_tractor(path)
        assert catalog.attrs["schema"] == release and len(catalog) == len(truth)
        selected.append(truth[detected & select(catalog, "elg_padded")])
        if sum(map(len, selected)) >= wanted:
            break
    expected = pd.concat(selected, ignore_index=True).iloc[:wanted]
    np.testing.assert_array_equal(fakes[["x", "y"]].to_numpy(), expected[["x", "y"]].to_numpy())
    composite = measured["type"].to_numpy() == "COMP"
    assert bool(composite.any()) is (release != "dr5")
    assert np.all(measured["fracdev"].to_numpy()[composite] < 0.5)


@pytest.mark.parametrize("release", ["dr9", "dr10"])
def test_a_release_writes_legacypipes_columns_and_dtypes(mocks, release):
    number, maskbits_format = RELEASES[release]
    for path in _tractors(mocks[release]):
        columns, values = _table(path)
        names = set(columns.names)
        assert columns["release"].format == "I" and set(values["release"]) == {number}
        assert columns["type"].format == "3A"  # no room for DR8's padding
        assert set(values["type"]) <= {"PSF", "REX", "EXP", "DEV", "SER", "DUP"}
        assert not DR5_SHAPES & names
        assert {*SHAPES, *(f"{name}_ivar" for name in SHAPES)} <= names
        assert columns["maskbits"].format == maskbits_format
        assert 0 < np.count_nonzero(values["maskbits"]) < len(values["maskbits"]) / 2
        assert bool(np.any(values["maskbits"].astype(np.int64) & SUB_BLOB)) is (release == "dr10")
        i_band = ["flux_i", "flux_ivar_i", "nobs_i", "psfsize_i"]
        assert all(name in names for name in [*i_band, "mw_transmission_i"]) is (release == "dr10")
        for name in i_band if release == "dr10" else []:
            assert not np.any(values[name]), name
        if release == "dr10":  # extinction in i lies between r's and z's
            transmission = values["mw_transmission_i"]
            assert np.all((values["mw_transmission_r"] < transmission) & (transmission < values["mw_transmission_z"]))


@pytest.mark.parametrize("release", ["dr9", "dr10"])
def test_shapes_follow_legacypipes_conventions(mocks, release):
    types_seen = set()
    for path in _tractors(mocks[release]):
        _, values = _table(path)
        source_type = values["type"]
        types_seen |= set(source_type)
        assert np.all(values["sersic"][source_type != "SER"] == 0)
        assert np.all((values["sersic"][source_type == "SER"] >= 1) & (values["sersic"][source_type == "SER"] <= 4))
        rex, psf = source_type == "REX", source_type == "PSF"
        assert np.all(values["shape_r"][rex] > 0)
        assert not np.any(values["shape_e1"][rex]) and not np.any(values["shape_e2"][rex])
        for name in SHAPES:
            assert not np.any(values[name][psf]) and not np.any(values[f"{name}_ivar"][psf]), name
    assert types_seen >= {"PSF", "REX", "EXP", "DEV", "SER"}


@pytest.mark.parametrize("release", ["dr9", "dr10"])
def test_each_row_is_the_dr5_row_with_comp_written_as_ser(mocks, release):
    composites = 0
    for dr5_path, path in zip(_tractors(mocks["dr5"]), _tractors(mocks[release]), strict=True):
        _, dr5 = _table(dr5_path)
        _, found = _table(path)
        rows = len(dr5["objid"])
        assert np.count_nonzero(found["type"] != "DUP") == rows and np.all(found["type"][rows:] == "DUP")
        for name in set(dr5) & set(found) - {"release", "type"}:
            np.testing.assert_array_equal(found[name][:rows], dr5[name], err_msg=name)
        dr5_type = dr5["type"]
        np.testing.assert_array_equal(found["type"][:rows], np.where(dr5_type == "COMP", "SER", dr5_type))
        fracdev = dr5["fracdev"].astype(np.float64)
        comp, dev, exponential = dr5_type == "COMP", dr5_type == "DEV", np.isin(dr5_type, ["EXP", "REX"])
        composites += np.count_nonzero(comp)
        np.testing.assert_allclose(found["sersic"][:rows][comp], 1 + 3 * fracdev[comp], rtol=1e-6)
        radius = (1 - fracdev) * dr5["shapeexp_r"] + fracdev * dr5["shapedev_r"]
        np.testing.assert_allclose(found["shape_r"][:rows][comp], radius[comp], rtol=1e-6)
        for part in ("r", "e1", "e2"):
            np.testing.assert_array_equal(found[f"shape_{part}"][:rows][dev], dr5[f"shapedev_{part}"][dev])
            np.testing.assert_array_equal(
                found[f"shape_{part}"][:rows][exponential], dr5[f"shapeexp_{part}"][exponential]
            )
    assert composites > 0


@pytest.mark.parametrize("release", ["dr9", "dr10"])
def test_dup_rows_are_gaia_stars_with_no_flux_beside_the_brightest_psf_sources(mocks, release):
    catalogs = [_table(path)[1] for path in _tractors(mocks[release])]
    # The DR5 tree's catalog: the brick's sources, which lead each rs dir's re-fit (then its fakes).
    sources = np.count_nonzero(catalogs[0]["type"] != "DUP")
    duplicated = []
    for values in catalogs:
        dup = values["type"] == "DUP"
        assert np.count_nonzero(dup) == DUPLICATES
        assert np.all(values["brick_primary"][dup])
        for band in "grz" + ("i" if release == "dr10" else ""):
            assert not np.any(values[f"flux_{band}"][dup]) and not np.any(values[f"flux_ivar_{band}"][dup]), band
        assert len(set(values["objid"])) == len(values["objid"])
        # Each sits 0.05" from a source it duplicates, the PSF sources first.
        separation = (
            np.hypot(
                (values["ra"][dup, None] - values["ra"][None, ~dup]) * np.cos(np.radians(values["dec"][dup, None])),
                values["dec"][dup, None] - values["dec"][None, ~dup],
            )
            * 3600
        )
        nearest = np.argmin(separation, axis=1)
        np.testing.assert_allclose(separation[np.arange(DUPLICATES), nearest], 0.05, rtol=1e-3)
        assert np.all(nearest < sources)
        psf_sources = np.count_nonzero(values["type"][:sources] == "PSF")
        assert 0 < psf_sources < DUPLICATES  # so that both rules are seen: PSF first, then the brightest
        assert np.count_nonzero(values["type"][~dup][nearest] == "PSF") == psf_sources
        others = values["type"][~dup][nearest] != "PSF"
        brightest = np.sort(values["objid"][:sources][values["type"][:sources] != "PSF"])[: DUPLICATES - psf_sources]
        np.testing.assert_array_equal(np.sort(values["objid"][~dup][nearest][others]), brightest)
        duplicated.append(sorted(values["objid"][~dup][nearest]))
    # The DR5 tree's catalog and every rs dir's duplicate the same real sources.
    assert all(objids == duplicated[0] for objids in duplicated)


def test_an_unknown_release_is_refused_naming_the_choices(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["mock-survey", "--out", str(tmp_path / "x"), "--release", "dr8"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "--release: invalid choice: 'dr8'" in error
    assert all(release in error.splitlines()[-1] for release in ("dr5", "dr9", "dr10"))
    assert not (tmp_path / "x").exists()
