"""Injection run manifests (docs/manifest.md): the mock's Rubin-like tree cut through its manifest gives the stamps of
its DR5 and obiwan trees; the schema and semantic errors name the tile, side, band and key; weights, masks,
positions, dropped rows and Balrog-style files are read as the manifest says."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.io import fits
from fixtures import REPOSITORY
from fixtures.tinysurvey import load

from realfake.cutouts import CutoutSettings, input_files, run_cutouts, run_cutouts_batch
from realfake.errors import RealfakeError
from realfake.manifest import load_manifest, read_side, side_sources
from realfake.mock.brick import brick_wcs
from realfake.mock.layout import mock_bricks
from realfake.mock.manifest import NOT_INJECTED, real_selection, tile_name, tract_origin
from realfake.mock.settings import MODEL_SELECTION, MockSettings
from realfake.mock.survey import run_mock_survey
from realfake.survey import legacy
from realfake.survey.selection import select

BRICK = "1238p245"
FAKES_PER_RUN = 8
SETTINGS = dict(bricks=1, size=256, seed=3, rsdirs=2, fakes_per_rsdir=FAKES_PER_RUN, manifest=True)
TILE = tile_name(mock_bricks(1)[0])  # "mock_cells:<brickid>:1238p245"
TILE_FILE = TILE.replace(":", "_")


@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> Path:
    """A 1-brick 256-pixel mock with its obiwan tree and its Rubin-like manifest tree."""
    root = tmp_path_factory.mktemp("survey")
    run_mock_survey(MockSettings(out=root, **SETTINGS))
    return root


def manifest_document(survey: Path) -> dict:
    return yaml.safe_load((survey / "manifest" / "run.yaml").read_text())


def write_manifest(survey: Path, document: dict, name: str | None = None) -> Path:
    """A variant of the mock's manifest beside it (so that its relative paths hold), by default under a new name
    (load_manifest keeps what it loaded while a file's size and time are unchanged)."""
    if name is None:
        handle, name = tempfile.mkstemp(suffix=".yaml", prefix="variant-", dir=survey / "manifest")
        os.close(handle)
    path = survey / "manifest" / name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def cut(settings: CutoutSettings, brick: str, out: Path):
    counts = run_cutouts(settings, brick, out)
    return (counts, *load(out))


@pytest.mark.parametrize("kind", ["real", "sim"])
def test_cutouts_through_the_manifest_are_those_of_the_dr5_and_obiwan_trees(survey, tmp_path, kind):
    """The reals too: the manifest's real ``select`` is elg_padded written over the Rubin-like columns, and keeps the
    sources that the trees' default selection (elg_padded) keeps."""
    trees = CutoutSettings(kind=kind, dr5_dir=survey / "dr5", obiwan_dir=survey / "obiwan")
    manifest = CutoutSettings(kind=kind, manifest=survey / "manifest" / "run.yaml")
    counts, stamps, catalog, _ = cut(trees, BRICK, tmp_path / "trees.h5")
    manifest_counts, manifest_stamps, manifest_catalog, attributes = cut(manifest, TILE, tmp_path / "manifest.h5")
    assert len(stamps) > 5 and manifest_stamps.shape == stamps.shape
    # nJy and back, variance and back: float32 rounding only.
    np.testing.assert_allclose(manifest_stamps, stamps, rtol=2e-6, atol=1e-9)
    np.testing.assert_array_equal(manifest_catalog["id"], catalog["id"])
    np.testing.assert_array_equal(manifest_catalog["centre_x"], catalog["centre_x"])
    np.testing.assert_allclose(manifest_catalog["ra"], catalog["ra"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(manifest_catalog["dec"], catalog["dec"], rtol=0, atol=1e-8)
    for column in ("mag_dered_g", "mag_dered_z", "measured_mag_dered_r", "measured_size", "size", "sersic_n"):
        np.testing.assert_allclose(manifest_catalog[column], catalog[column], rtol=1e-9, equal_nan=True)
    assert list(manifest_catalog["measured_type"]) == list(catalog["measured_type"])
    assert manifest_counts.sources_written == counts.sources_written
    assert attributes["tile"] == TILE and attributes["brickname"] == TILE_FILE
    assert set(manifest_catalog["brickname"]) == {TILE_FILE}
    np.testing.assert_allclose(attributes["flux_factor"], 1 / 3631, rtol=1e-12)
    if kind == "sim":
        assert manifest_catalog["measured"].sum() == catalog["measured"].sum() > 0
        assert list(manifest_catalog["rsdir"]) == list(catalog["rsdir"])


def test_not_injected_truth_rows_are_dropped_and_counted(survey, tmp_path):
    manifest = survey / "manifest" / "run.yaml"
    counts, _, catalog, attributes = cut(CutoutSettings(kind="sim", manifest=manifest), TILE, tmp_path / "sim.h5")
    assert counts.sources_read == 2 * (FAKES_PER_RUN + NOT_INJECTED)
    assert counts.sources_selected == 2 * FAKES_PER_RUN
    assert list(attributes["dropped_rows"]) == [f"injection_flag != 0: {NOT_INJECTED}"] * 2
    assert catalog["id"].max() < 1_000_000
    # Without the drop rule the flagged copies would be cut: the rule is what keeps them out.
    document = manifest_document(survey)
    for run in document["tiles"][0]["fake"]:
        del run["truth"]["drop"]
    variant = write_manifest(survey, document, "no-drop.yaml")
    _, _, kept, _ = cut(CutoutSettings(kind="sim", manifest=variant), TILE, tmp_path / "kept.h5")
    assert (kept["id"] >= 1_000_000).sum() > 0


def test_the_tiles_input_files_are_those_the_manifest_names(survey):
    settings = CutoutSettings(kind="sim", manifest=survey / "manifest" / "run.yaml")
    files = input_files(settings, TILE_FILE)
    names = [Path(path).name for path in files]
    assert names[0] == "run.yaml"
    assert "fake-rs8-z.fits" in names and "truth-rs0.fits" in names and "measured-rs8.fits" in names
    assert not any(name.startswith("real-") or name == "object.fits" for name in names)
    assert all(Path(path).is_file() for path in files)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda document: document["tiles"][0]["fake"][1]["weight"].pop("r"),
            f"tile {TILE}, fake run rs8, band r: weight missing",
        ),
        (
            lambda document: document["tiles"][0]["real"].update(weight_kind="ivar"),
            f"tile {TILE}, real: weight_kind: 'ivar' is not one of",
        ),
        (
            lambda document: document["tiles"][0]["real"]["image"].update(g=["real-g.fits"]),
            f"tile {TILE}, real, band g: image:",
        ),
        (
            lambda document: document["tiles"][0]["fake"][0]["truth"]["mag"].pop("z"),
            f"tile {TILE}, fake run rs0, band z: truth.flux or mag missing",
        ),
        (lambda document: document["flux"].update(unit="counts"), "flux.zeropoint missing"),
        (lambda document: document["flux"].update(zeropoint=30.0), "flux.zeropoint 30.0 disagrees with unit nJy"),
        (
            lambda document: document["tiles"][0].update(tile=10321 * 60 + 66),  # YAML 1.1's reading of 10321:66
            "tile 619326: tile: 619326 is not of type 'string' (quote tile names",
        ),
    ],
)
def test_a_bad_manifest_is_refused_naming_tile_side_band_and_key(survey, edit, expected):
    document = manifest_document(survey)
    edit(document)
    path = write_manifest(survey, document)
    with pytest.raises(RealfakeError) as error:
        load_manifest(path)
    assert f"manifest {path}: " in str(error.value)
    assert expected in str(error.value)


def test_a_variance_declared_an_inverse_variance_is_refused(survey):
    document = manifest_document(survey)
    document["tiles"][0]["real"]["weight_kind"] = "invvar"
    manifest = load_manifest(write_manifest(survey, document))
    with pytest.raises(RealfakeError, match=rf"tile {TILE}, real, band g: weight \(invvar\): the image noise is"):
        read_side(manifest, TILE_FILE, manifest.tile(TILE_FILE)["real"], ("g",))
    # As declared, the same file is taken.
    right = load_manifest(survey / "manifest" / "run.yaml")
    assert read_side(right, TILE_FILE, right.tile(TILE_FILE)["real"], ("g",)).image.shape == (1, 256, 256)


def test_no_data_mask_pixels_have_inverse_variance_zero(survey):
    dr5 = legacy.read_coadd(survey / "dr5" / "coadd" / "123" / BRICK, BRICK)
    uncovered = dr5.inverse_variance == 0
    assert uncovered.any() and (~uncovered).any()
    manifest = load_manifest(survey / "manifest" / "run.yaml")
    coadd = read_side(manifest, TILE_FILE, manifest.tile(TILE_FILE)["real"], ("g", "r", "z"))
    np.testing.assert_array_equal(coadd.inverse_variance == 0, uncovered)
    # The variance under NO_DATA is finite: only the mask makes those pixels "no data".
    document = manifest_document(survey)
    for key in ("mask", "mask_planes"):
        del document["tiles"][0]["real"][key]
    unmasked = load_manifest(write_manifest(survey, document))
    coadd = read_side(unmasked, TILE_FILE, unmasked.tile(TILE_FILE)["real"], ("g", "r", "z"))
    assert (coadd.inverse_variance[uncovered] > 0).all()


def test_xy_with_origin_and_offset_and_radec_give_the_same_stamps(survey, tmp_path):
    """The object catalog again with ra, dec and 1-indexed patch pixels: every way to give the positions cuts
    the same stamps, and an origin left out moves every stamp by a pixel."""
    settings = MockSettings(out=survey, **SETTINGS)
    brick = mock_bricks(1)[0]
    x0, y0 = tract_origin(settings, brick)
    objects = survey / "manifest" / "123" / BRICK / "object.fits"
    with fits.open(objects) as hdus:
        table = hdus[1].data
        ra, dec = brick_wcs(settings, brick).all_pix2world(table["x"] - x0, table["y"] - y0, 0)
        columns = [*hdus[1].columns]
        extra = [fits.Column(name="ra", format="D", array=ra), fits.Column(name="dec", format="D", array=dec)]
        extra += [fits.Column(name=f"{axis}1", format="D", array=table[axis] - shift + 1) for axis, shift in
                  (("x", x0), ("y", y0))]  # fmt: skip
        fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns + extra)]).writeto(
            survey / "manifest" / "123" / BRICK / "object-more.fits", overwrite=True
        )
    positions = {
        "offset": {"xy": {"cols": ["x", "y"], "origin": 0, "offset": [x0, y0]}},
        "radec": {"radec": ["ra", "dec"]},
        "origin": {"xy": {"cols": ["x1", "y1"], "origin": 1}},
        "wrong": {"xy": {"cols": ["x1", "y1"], "origin": 0}},
    }
    stamps = {}
    for name, position in positions.items():
        document = manifest_document(survey)
        sources = document["tiles"][0]["real"]["sources"]
        sources.pop("xy")
        sources.update(path=f"123/{BRICK}/object-more.fits", **position)
        path = write_manifest(survey, document, f"{name}.yaml")
        _, stamps[name], catalog, _ = cut(CutoutSettings(kind="real", manifest=path), TILE, tmp_path / f"{name}.h5")
        stamps[name] = (stamps[name], catalog["centre_x"].to_numpy())
    assert len(stamps["offset"][0]) > 5
    np.testing.assert_array_equal(stamps["radec"][0], stamps["offset"][0])
    np.testing.assert_array_equal(stamps["origin"][0], stamps["offset"][0])
    common = min(len(stamps["wrong"][1]), len(stamps["offset"][1]))
    assert (stamps["wrong"][1][:common] != stamps["offset"][1][:common]).all()


def write_balrog_tile(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    """A DES-like coadd tile (HDUs SCI, MSK, WGT in counts at zero point 30) of known nanomaggy pixels, and a truth
    catalog with a vector flux column in g, r, i, z order; returns the image and inverse variance in
    nanomaggies."""
    rng = np.random.default_rng(5)
    sigma = 0.02  # nanomaggies
    image = rng.normal(0, sigma, (200, 200))
    inverse_variance = np.full(image.shape, 1 / sigma**2)
    counts_per_nanomaggy = 10 ** (0.4 * (30 - 22.5))
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRVAL1"], header["CRVAL2"], header["CRPIX1"], header["CRPIX2"] = 350.0, -56.0, 100.5, 100.5
    header["CD1_1"], header["CD2_2"], header["CD1_2"], header["CD2_1"] = -0.263 / 3600, 0.263 / 3600, 0.0, 0.0
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU((image * counts_per_nanomaggy).astype(np.float32), header, name="SCI"),
            fits.ImageHDU(np.zeros(image.shape, dtype=np.int32), header, name="MSK"),
            fits.ImageHDU((inverse_variance / counts_per_nanomaggy**2).astype(np.float32), header, name="WGT"),
        ]
    ).writeto(directory / "coadd-r.fits")
    flux = np.array([[1000.0, 2000.0, 3000.0, 4000.0], [10.0, 20.0, 30.0, 40.0]])
    truth = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="id", format="K", array=np.array([7, 7])),  # not unique: drawn with replacement
            fits.Column(name="ra", format="D", array=np.array([350.0, 350.001])),
            fits.Column(name="dec", format="D", array=np.array([-56.0, -56.0])),
            fits.Column(name="bdf_flux", format="4D", array=flux),
        ]
    )
    fits.HDUList([fits.PrimaryHDU(), truth]).writeto(directory / "truth.fits")
    return image, inverse_variance


def test_a_balrog_style_tile_is_read_by_extname_at_zero_point_30(tmp_path):
    image, inverse_variance = write_balrog_tile(tmp_path)
    side = {"image": {"r": ["coadd-r.fits", "SCI"]}, "weight": {"r": ["coadd-r.fits", "WGT"]}, "weight_kind": "invvar"}
    truth = {"path": "truth.fits", "id": "row", "radec": ["ra", "dec"], "flux": {"r": "bdf_flux[1]"}}
    document = {
        "bands": ["r"],
        "flux": {"unit": "counts", "zeropoint": 30.0},
        "tiles": [
            {
                "tile": "DES2329-5622",
                "real": {**side, "sources": truth},
                "fake": [{"run": "0", **side, "truth": truth}],
            }
        ],
    }
    path = tmp_path / "balrog.yaml"
    path.write_text(yaml.safe_dump(document))
    manifest = load_manifest(path)
    np.testing.assert_allclose(manifest.flux_factor, 1e-3, rtol=1e-12)
    entry = manifest.tile("DES2329-5622")
    coadd = read_side(manifest, "DES2329-5622", entry["fake"][0], ("r",))
    np.testing.assert_allclose(coadd.image[0], image, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(coadd.inverse_variance[0], inverse_variance, rtol=1e-6)
    sources = side_sources(manifest, "DES2329-5622", entry["fake"][0], ("r",))
    np.testing.assert_allclose(sources.table["flux_r"], [2.0, 0.02], rtol=1e-12)
    np.testing.assert_allclose(sources.table["mag_dered_r"], 22.5 - 2.5 * np.log10([2.0, 0.02]), rtol=1e-12)
    assert list(sources.table["id"]) == [0, 1] and sources.mw_transmission_source == "none given: 1"
    # The catalog's own id repeats: refused, naming the key.
    truth["id"] = "id"
    path = tmp_path / "balrog-id.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(RealfakeError, match=r"tile DES2329-5622, fake run 0: truth.id: column id repeats values"):
        repeated = load_manifest(path)
        side_sources(repeated, "DES2329-5622", repeated.tile("DES2329-5622")["fake"][0], ("r",))


def test_a_negative_weight_is_refused(tmp_path):
    write_balrog_tile(tmp_path)
    with fits.open(tmp_path / "coadd-r.fits", mode="update") as hdus:
        hdus["WGT"].data[3, 4] = -1.0
    side = {"image": {"r": ["coadd-r.fits", "SCI"]}, "weight": {"r": ["coadd-r.fits", 3]}, "weight_kind": "invvar"}
    truth = {"path": "truth.fits", "id": "row", "radec": ["ra", "dec"], "flux": {"r": "bdf_flux[1]"}}
    document = {
        "bands": ["r"],
        "flux": {"unit": "counts", "zeropoint": 30.0},
        "tiles": [{"tile": "T", "real": {**side, "sources": truth}, "fake": [{"run": "0", **side, "truth": truth}]}],
    }
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(document))
    manifest = load_manifest(tmp_path / "m.yaml")
    with pytest.raises(RealfakeError, match="tile T, real, band r: weight has negative values"):
        read_side(manifest, "T", manifest.tile("T")["real"], ("r",))


def test_the_manifest_replaces_the_trees_in_the_cutouts_settings(tmp_path):
    with pytest.raises(RealfakeError, match="--dr5-dir.*--manifest"):
        CutoutSettings(kind="real")
    assert CutoutSettings(kind="sim", manifest=tmp_path / "run.yaml").obiwan_dir is None
    with pytest.raises(RealfakeError, match="real source rsdir"):
        CutoutSettings(kind="real", manifest=tmp_path / "run.yaml", real_source="rsdir")


def test_the_mock_manifest_tree_is_written_only_when_asked_and_only_from_obiwan(tmp_path):
    with pytest.raises(RealfakeError, match="--manifest needs --injector obiwan"):
        MockSettings(out=tmp_path, manifest=True, injector="legacysim", release="dr9")
    shutil.rmtree(tmp_path)


def test_the_documented_rubin_and_balrog_examples_load(tmp_path):
    text = (REPOSITORY / "docs" / "manifest.md").read_text()
    examples = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)[1:]
    assert len(examples) == 2
    for index, example in enumerate(examples):
        path = tmp_path / f"example{index}.yaml"
        path.write_text(example)
        manifest = load_manifest(path)
        assert manifest.bands == ("g", "r", "z")
    assert list(manifest.tiles) == ["DES2329-5622"] and manifest.flux_factor == pytest.approx(1e-3)


def test_batch_mode_cuts_each_listed_tile_into_its_file_name(survey, tmp_path):
    (tmp_path / "tiles.txt").write_text(f"{TILE}\n")
    settings = CutoutSettings(kind="real", manifest=survey / "manifest" / "run.yaml")
    counts = run_cutouts_batch(settings, tmp_path / "tiles.txt", tmp_path / "out")
    path = tmp_path / "out" / TILE_FILE[:3] / f"{TILE_FILE}.h5"
    stamps, catalog, attributes = load(path)
    assert counts.sources_written == len(stamps) == len(catalog) > 5 and attributes["tile"] == TILE
    # A complete file is skipped on a re-run.
    assert run_cutouts_batch(settings, tmp_path / "tiles.txt", tmp_path / "out").sources_written == 0


@pytest.mark.parametrize("model", ["galaxies", "stars"])
def test_the_exports_real_select_is_the_fakes_named_selection_over_its_columns(survey, model):
    """real_selection writes elg_padded (psf_stars) over object.fits's columns; on the mock's DR5 catalog in those
    columns it keeps exactly the sources the named selection keeps."""
    tractor = legacy.read_tractor(survey / "dr5" / "tractor" / "123" / f"tractor-{BRICK}.fits")
    if model == "stars":  # the 256-pixel brick has few stars: every source as a point source, so that some pass
        tractor = tractor.assign(type="PSF")
    columns = {
        "detect_isprimary": tractor["brick_primary"], "type": tractor["type"], "rhalf": tractor["rhalf"],
        "sersic_n": tractor["sersic_n"],
        **{f"{band}_cmodelflux": tractor[f"flux_{band}"] * 3631.0 for band in "grz"},
        **{f"mw_transmission_{band}": tractor[f"mw_transmission_{band}"] for band in "grz"},
    }  # fmt: skip
    expression = real_selection(MockSettings(out=survey, model=model))
    kept = select(pd.DataFrame(columns), expression)
    named = select(tractor, MODEL_SELECTION[model])
    assert 3 <= named.sum() < len(tractor)
    np.testing.assert_array_equal(kept, named)
