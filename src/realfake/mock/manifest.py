"""The mock survey as a Rubin source_injection export (``mock --manifest``; docs/manifest.md): the same pixels and
sources as its DR5 and obiwan trees, in Rubin's forms, and ``manifest/run.yaml`` naming them.

Per brick, under ``<out>/manifest/<AAA>/<brick>/``: ``real-<band>.fits`` and ``fake-<rsdir>-<band>.fits``, ExposureF
files (IMAGE in nJy = nanomaggies x 3631 with the brick's WCS and ``LTV1, LTV2 = -x0, -y0``; MASK with the
NO_DATA plane, bit :data:`NO_DATA_BIT`, set where the inverse variance is 0; VARIANCE in nJy^2, a finite value
under NO_DATA so that only the mask says "no data"); ``object.fits`` (the DR5 tractor sources);
``truth-<rsdir>.fits`` (the simcat's fakes, and :data:`NOT_INJECTED` rows with ``injection_flag`` 8, NO_OVERLAP:
copies of the first fakes' rows under new ids, never rendered on their own); ``measured-<rsdir>.fits`` (the rs
dir's tractor catalog). The real side's ``select`` is the fakes' population (elg_padded or psf_stars) written
over ``object.fits``'s columns (:func:`real_selection`), since a manifest's reals are what its ``select`` keeps.
Catalog positions are tract-like: ``x, y`` = 0-indexed pixel + (x0, y0), the manifest's ``offset``. The files
are read back from the DR5 and obiwan trees, so cutouts through the manifest equal theirs up to float rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from realfake import paths
from realfake.atomic import atomic_output
from realfake.conventions import brick_directory, tile_file_name
from realfake.cutouts.sources import fake_type
from realfake.mock.files import write_exposure, write_table
from realfake.mock.layout import BrickGeometry
from realfake.mock.population import PIXEL_SCALE
from realfake.mock.settings import MODEL_SELECTION, MockSettings
from realfake.survey import legacy, runs
from realfake.survey.selection import ELG_BANDS, selection_expression

NANOJANSKY_PER_NANOMAGGY = 3631.0
NO_DATA_BIT = 8  # afw's usual NO_DATA plane
MASK_PLANES = {"BAD": 0, "SAT": 1, "EDGE": 4, "NO_DATA": NO_DATA_BIT, "INJECTED": 9}
NOT_INJECTED = 3  # truth rows per run with a non-zero injection_flag
NO_OVERLAP = 8  # injection_flag bit 3


def manifest_directory(settings: MockSettings) -> Path:
    return settings.out / "manifest"


def tile_name(brick: BrickGeometry) -> str:
    """The mock brick's Rubin-like tile name, ``mock_cells:<brickid>:<brick>`` (with ``:``, unsafe in paths)."""
    return f"mock_cells:{brick.brickid}:{brick.name}"


def tract_origin(settings: MockSettings, brick: BrickGeometry) -> tuple[int, int]:
    """(x0, y0): the brick's corner in its tract-like frame, as a Rubin patch's xy0."""
    return 2 * settings.size + 7 * brick.column, 3 * settings.size + 5 * brick.row


def _exposure(path: Path, coadd: legacy.Coadd, band_index: int, x0: int, y0: int, injected: bool) -> None:
    inverse_variance = coadd.inverse_variance[band_index].astype(np.float64)
    covered = inverse_variance > 0
    variance = np.full(inverse_variance.shape, np.median(1 / inverse_variance[covered]) if covered.any() else 1.0)
    variance[covered] = 1 / inverse_variance[covered]
    header = coadd.header.copy()
    header["BUNIT"] = "nJy"
    header["LTV1"], header["LTV2"] = -x0, -y0
    mask = np.where(covered, 0, 1 << NO_DATA_BIT).astype(np.int32)
    primary = {"INJECTED": "deep_coadd_predetection"} if injected else {}
    write_exposure(
        path,
        coadd.image[band_index].astype(np.float64) * NANOJANSKY_PER_NANOMAGGY,
        mask,
        variance * NANOJANSKY_PER_NANOMAGGY**2,
        header,
        MASK_PLANES,
        primary,
    )


def _flux_columns(catalog, bands, name: str) -> dict:
    return {
        name.format(band=band): ("D", catalog[f"flux_{band}"].to_numpy(np.float64) * NANOJANSKY_PER_NANOMAGGY)
        for band in bands
    }


def _transmission_columns(catalog, bands) -> dict:
    return {f"mw_transmission_{band}": ("D", catalog[f"mw_transmission_{band}"].to_numpy(np.float64)) for band in bands}


def write_manifest_brick(settings: MockSettings, brick: BrickGeometry) -> None:
    """Write one brick's Rubin-like files from its DR5 and obiwan files (already written)."""
    directory = manifest_directory(settings) / brick_directory(brick.name) / brick.name
    x0, y0 = tract_origin(settings, brick)
    dr5 = settings.out / "dr5"
    real = legacy.read_coadd(Path(paths.dr5_file(dr5, "coadd_dir", brick.name)), brick.name, settings.bands)
    for index, band in enumerate(settings.bands):
        _exposure(directory / f"real-{band}.fits", real, index, x0, y0, injected=False)
    tractor = legacy.read_tractor(Path(paths.dr5_file(dr5, "tractor", brick.name)), settings.bands)
    write_table(
        directory / "object.fits",
        {
            "objectId": ("K", tractor["objid"].to_numpy(np.int64)),
            "x": ("D", tractor["bx"].to_numpy() + x0),
            "y": ("D", tractor["by"].to_numpy() + y0),
            "detect_isPrimary": ("L", tractor["brick_primary"].to_numpy(bool)),
            **_flux_columns(tractor, settings.bands, "{band}_cModelFlux"),
            **_transmission_columns(tractor, settings.bands),
            "type": ("3A", tractor["type"].to_numpy().astype(str)),
            **{name: ("D", tractor[name].to_numpy(np.float64)) for name in ("rhalf", "sersic_n", "e1", "e2")},
        },
    )
    for rsdir in runs.find_runs(settings.out / "obiwan", brick.name, "obiwan"):
        coadd = legacy.read_coadd(rsdir.coadd_dir, brick.name, settings.bands)
        for index, band in enumerate(settings.bands):
            _exposure(directory / f"fake-{rsdir.name}-{band}.fits", coadd, index, x0, y0, injected=True)
        _write_truth(settings, directory / f"truth-{rsdir.name}.fits", runs.read_fake_catalog(rsdir), x0, y0)
        measured = legacy.read_tractor(rsdir.tractor_path, settings.bands)
        write_table(
            directory / f"measured-{rsdir.name}.fits",
            {
                "coord_ra": ("D", measured["ra"].to_numpy(np.float64)),
                "coord_dec": ("D", measured["dec"].to_numpy(np.float64)),
                **_flux_columns(measured, settings.bands, "{band}_cModelFlux"),
                **_transmission_columns(measured, settings.bands),
                "type": ("3A", measured["type"].to_numpy().astype(str)),
                "rhalf": ("D", measured["rhalf"].to_numpy(np.float64)),
            },
        )


def _write_truth(settings: MockSettings, path: Path, simcat, x0: int, y0: int) -> None:
    """The fakes with observed AB magnitudes per band, then NOT_INJECTED copies of the first fakes under new ids
    with ``injection_flag`` NO_OVERLAP (a reader that kept them would cut extra stamps with those ids)."""
    flagged = simcat.iloc[:NOT_INJECTED]
    ids = np.concatenate([simcat["id"].to_numpy(np.int64), 1_000_000 + np.arange(len(flagged))])

    def both(column: str) -> np.ndarray:
        return np.concatenate([simcat[column].to_numpy(np.float64), flagged[column].to_numpy(np.float64)])

    columns = {
        "injection_id": ("K", ids),
        "injection_flag": ("J", np.concatenate([np.zeros(len(simcat)), np.full(len(flagged), NO_OVERLAP)])),
        "x": ("D", both("x") + x0),
        "y": ("D", both("y") + y0),
    }
    for band in settings.bands:
        columns[f"{band}_mag"] = ("D", legacy.nanomaggies_to_mag(both(f"flux_{band}")))
        columns[f"mw_transmission_{band}"] = ("D", both(f"mw_transmission_{band}"))
    columns["source_type"] = ("3A", np.asarray(fake_type(both("sersic_n"), both("rhalf"))).astype(str))
    for name in ("rhalf", "sersic_n", "e1", "e2"):
        columns[name] = ("D", both(name))
    write_table(path, columns)


def real_selection(settings: MockSettings) -> str:
    """The real side's ``select``: the population the mock's fakes follow (``elg_padded`` for galaxies,
    ``psf_stars`` for stars: ``MODEL_SELECTION``), written over ``object.fits``'s columns as a user of an
    injection code would write it; the workflow's ``cutouts.selection`` plays no part with a manifest. Magnitudes
    are dereddened AB from the nJy fluxes, NaN where a flux is not positive."""

    def mag(band: str) -> str:
        flux = f"{band}_cmodelflux / {NANOJANSKY_PER_NANOMAGGY:g} / mw_transmission_{band}"
        return f"(22.5 - 2.5 * log10({flux}))"

    columns = {"primary": "detect_isprimary", "type": "type", "rhalf": "rhalf", "sersic_n": "sersic_n"}
    columns.update({f"flux_{band}": f"{band}_cmodelflux" for band in ELG_BANDS})
    return selection_expression(MODEL_SELECTION[settings.model], mag, columns)


def _side(bands, prefix: str) -> dict:
    return {
        "image": {band: [f"{prefix}-{band}.fits", "IMAGE"] for band in bands},
        "weight": {band: [f"{prefix}-{band}.fits", "VARIANCE"] for band in bands},
        "weight_kind": "variance",
        "mask": {band: [f"{prefix}-{band}.fits", "MASK"] for band in bands},
        "mask_planes": ["NO_DATA"],
    }


def run_manifest(settings: MockSettings, bricks: list[BrickGeometry], rsdirs: list[str]) -> dict:
    """The manifest document of the mock's Rubin-like tree (paths relative to ``manifest/``)."""
    bands = list(settings.bands)
    shape = {"type": "type", "size": "rhalf", "sersic_n": "sersic_n", "e1": "e1", "e2": "e2"}
    tiles = []
    for brick in bricks:
        x0, y0 = tract_origin(settings, brick)
        folder = f"{brick_directory(brick.name)}/{brick.name}"
        xy = {"cols": ["x", "y"], "origin": 0, "offset": [x0, y0]}
        transmissions = {band: f"mw_transmission_{band}" for band in bands}
        real = _side(bands, f"{folder}/real")
        real["sources"] = {
            "path": f"{folder}/object.fits", "hdu": 1, "id": "objectId", "xy": xy, "select": real_selection(settings),
            "flux": {band: f"{band}_cModelFlux" for band in bands}, "flux_is_observed": True,
            "mw_transmission": transmissions, "shape": shape,
        }  # fmt: skip
        fakes = []
        for rsdir in rsdirs:
            fake = {"run": rsdir, **_side(bands, f"{folder}/fake-{rsdir}")}
            fake["truth"] = {
                "path": f"{folder}/truth-{rsdir}.fits", "hdu": 1, "id": "injection_id", "xy": xy,
                "drop": ["injection_flag != 0"], "mag": {band: f"{band}_mag" for band in bands},
                "flux_is_observed": True, "mw_transmission": transmissions, "shape": {**shape, "type": "source_type"},
            }  # fmt: skip
            fake["measured"] = {
                "path": f"{folder}/measured-{rsdir}.fits", "hdu": 1, "radec": ["coord_ra", "coord_dec"],
                "match_radius_arcsec": PIXEL_SCALE, "flux": {band: f"{band}_cModelFlux" for band in bands},
                "mw_transmission": transmissions, "type": "type", "size": "rhalf",
            }  # fmt: skip
            fakes.append(fake)
        tiles.append({"tile": tile_name(brick), "real": real, "fake": fakes})
    return {"bands": bands, "flux": {"unit": "nJy"}, "tiles": tiles}


def write_run_manifest(settings: MockSettings, bricks: list[BrickGeometry], rsdirs: list[str]) -> Path:
    """Write ``manifest/run.yaml`` for ``bricks``; return its path."""
    path = manifest_directory(settings) / "run.yaml"
    text = yaml.safe_dump(run_manifest(settings, bricks, rsdirs), sort_keys=False)
    header = "# The mock survey as a Rubin source_injection export (realfake.mock.manifest; docs/manifest.md).\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as temporary:
        temporary.write_text(header + text)
    return path


def tile_file_names(bricks: list[BrickGeometry]) -> list[str]:
    """The tiles' file names, in brick order."""
    return [tile_file_name(tile_name(brick)) for brick in bricks]
