"""The objects of one side of a manifest tile as a source table of :mod:`realfake.cutouts.sources` (the columns
real and fake sources share), read from the side's ``sources`` (real) or ``truth`` (fake) catalog.

- Columns are matched case-insensitively (names are lower-cased, as the tractor catalogs'); a vector column's
  items are ``name[0]``, ``name[1]``, ...; ``drop`` and ``select`` expressions use the lower-case names
  (:func:`realfake.survey.selection.select`).
- Positions: ``radec`` (deg), or ``xy`` turned into ra, dec through the image HDU's WCS at the array index
  ``xy - origin - offset`` (0-indexed); the stamps are then cut at ra, dec as every source's are.
- Fluxes: ``flux`` columns times the manifest's ``flux_factor`` (nanomaggies), or ``mag`` columns (AB) as
  ``10**(-0.4 (mag - 22.5))``. ``flux_is_observed`` false: the fluxes are dereddened and are multiplied by the
  transmission to be the observed ``flux_<b>``. ``mw_transmission`` columns, or 1 when none are given.
- Shape: the ``shape`` columns (type, size, sersic_n, e1, e2), or "" and NaN.
- measured_*: a real source's own values; a fake's from the ``measured`` catalog's nearest object within
  ``match_radius_arcsec``, or none (``measured`` false).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from realfake.errors import RealfakeError
from realfake.manifest.load import NANOMAGGY_ZEROPOINT, Manifest, side_name, where
from realfake.manifest.pixels import read_plane
from realfake.survey.selection import select


@dataclass(frozen=True, eq=False)
class SideSources:
    """A side's source table, the rows read, the rows each ``drop`` expression removed ({expression: count}),
    the selection applied ("none" without ``select``), the files read, and where the transmissions came from."""

    table: pd.DataFrame
    rows_read: int
    dropped: dict[str, int]
    selection: str
    files: list[str]
    mw_transmission_source: str


def read_catalog(path: str, hdu: int | str, message: str) -> pd.DataFrame:
    """A FITS table HDU as a DataFrame with lower-case column names, vector columns as ``name[i]``."""
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdus:
            table = hdus[hdu].data
            names = hdus[hdu].columns.names if table is not None else []
            columns = {}
            for name in names:
                values = np.asarray(table[name])
                if values.dtype.kind == "S":
                    values = np.char.strip(np.char.decode(values, "ascii"))
                values = values.astype(values.dtype.newbyteorder("=")) if values.dtype.kind in "iufb" else values
                if values.ndim == 1:
                    columns[name.lower()] = values
                elif values.ndim == 2:
                    columns.update({f"{name.lower()}[{index}]": values[:, index] for index in range(values.shape[1])})
    except FileNotFoundError:
        raise RealfakeError(f"{message}: file {path} not found") from None
    except (KeyError, IndexError):
        raise RealfakeError(f"{message}: {path} has no HDU {hdu!r}") from None
    except Exception as error:  # astropy reports corrupt files with many exception types
        raise RealfakeError(f"{message}: cannot read {path}: {type(error).__name__}: {error}") from None
    frame = pd.DataFrame(columns)
    frame.attrs["path"] = path
    return frame


def _column(catalog: pd.DataFrame, name: str, message: str) -> np.ndarray:
    if name.lower() not in catalog.columns:
        raise RealfakeError(f"{message}: column {name} not in {catalog.attrs['path']}")
    return catalog[name.lower()].to_numpy()


def _positions(catalog: pd.DataFrame, spec: dict, image_hdu: tuple[str, int | str], message: str) -> np.ndarray:
    """(ra, dec) float64 (2, N), from the catalog's radec or through the image WCS from its xy."""
    if "radec" in spec:
        return np.array([_column(catalog, column, f"{message}.radec").astype(np.float64) for column in spec["radec"]])
    from astropy.wcs import WCS

    xy = spec["xy"]
    offset = xy.get("offset", [0, 0])
    x, y = (
        _column(catalog, column, f"{message}.xy").astype(np.float64) - xy["origin"] - shift
        for column, shift in zip(xy["cols"], offset, strict=True)
    )
    header = read_plane(*image_hdu, f"{message}.xy: image").header
    ra, dec = WCS(header).celestial.all_pix2world(x, y, 0)
    return np.array([ra, dec], dtype=np.float64)


def _fluxes(catalog: pd.DataFrame, spec: dict, manifest: Manifest, bands: Sequence[str], message: str) -> dict:
    """{band: observed-or-as-given flux in nanomaggies} from flux or mag columns."""
    fluxes = {}
    for band in bands:
        if band in spec.get("flux", {}):
            fluxes[band] = _column(catalog, spec["flux"][band], message).astype(np.float64) * manifest.flux_factor
        else:
            magnitude = _column(catalog, spec["mag"][band], message).astype(np.float64)
            fluxes[band] = 10 ** (-0.4 * (magnitude - NANOMAGGY_ZEROPOINT))
    return fluxes


def _transmissions(catalog: pd.DataFrame, spec: dict, bands: Sequence[str], message: str) -> dict:
    given = spec.get("mw_transmission", {})
    return {
        band: _column(catalog, given[band], message).astype(np.float64) if band in given else np.ones(len(catalog))
        for band in bands
    }


def _shape(catalog: pd.DataFrame, spec: dict, message: str) -> dict:
    shape = spec.get("shape", {})
    values = {}
    for name in ("type", "size", "sersic_n", "e1", "e2"):
        if shape.get(name):
            values[name] = _column(catalog, shape[name], message)
        else:
            values[name] = np.full(len(catalog), np.nan) if name != "type" else np.full(len(catalog), "", dtype=object)
    values["type"] = np.asarray(values["type"]).astype(str).astype(object)
    return values


def _ids(catalog: pd.DataFrame, spec: dict, message: str) -> np.ndarray:
    if spec["id"] == "row":
        return np.arange(len(catalog), dtype=np.int64)
    ids = _column(catalog, spec["id"], f"{message}.id")
    if ids.dtype.kind not in "iu":
        raise RealfakeError(f"{message}.id: column {spec['id']} holds {ids.dtype}, not integers: use id: row")
    if len(np.unique(ids)) != len(ids):
        raise RealfakeError(f"{message}.id: column {spec['id']} repeats values: use id: row")
    return ids.astype(np.int64)


def _rows(catalog: pd.DataFrame, spec: dict) -> tuple[pd.DataFrame, dict[str, int], str]:
    """The rows kept: each ``drop`` expression's rows removed (counted), then ``select``."""
    dropped = {}
    for expression in spec.get("drop", []):
        removed = select(catalog, expression)
        dropped[expression] = int(removed.sum())
        catalog = catalog[~removed]
    selection = spec.get("select", "none")
    if "select" in spec:
        catalog = catalog[select(catalog, selection)]
    return catalog, dropped, selection


def side_sources(manifest: Manifest, file_name: str, side: dict, bands: Sequence[str]) -> SideSources:
    """The source table of one side of a tile (columns of :func:`realfake.cutouts.sources.real_source_table`,
    ``brickname`` the tile's file name, ``rsdir`` the fake run's name or "")."""
    from realfake.cutouts.sources import source_table, with_fit

    tile = manifest.tile(file_name)["tile"]
    key = "truth" if "run" in side else "sources"
    spec = side[key]
    message = where(manifest.path, tile, side_name(side)) + key
    catalog = read_catalog(spec["path"], spec.get("hdu", 1), message)
    rows_read = len(catalog)
    catalog, dropped, selection = _rows(catalog, spec)
    ra, dec = _positions(catalog, spec, side["image"][bands[0]], message)
    fluxes = _fluxes(catalog, spec, manifest, bands, message)
    transmission = _transmissions(catalog, spec, bands, message)
    if not spec.get("flux_is_observed", True):
        fluxes = {band: fluxes[band] * transmission[band] for band in bands}
    columns = {"id": _ids(catalog, spec, message), "ra": ra, "dec": dec}
    columns.update({f"flux_{band}": fluxes[band] for band in bands})
    columns.update({f"mw_transmission_{band}": transmission[band] for band in bands})
    shape = _shape(catalog, spec, message)
    table = source_table(file_name, side.get("run", ""), pd.DataFrame(columns), bands, *shape.values())
    files = [spec["path"]]
    if "run" not in side:
        table = with_fit(table, table, np.ones(len(table), dtype=bool), bands)
    elif "measured" in side:
        table = _with_measured(manifest, tile, side, table, bands)
        files.append(side["measured"]["path"])
    else:
        table = with_fit(table, table, np.zeros(len(table), dtype=bool), bands)
    given = "mw_transmission" in spec
    source = f"{key} columns" if given else "none given: 1"
    return SideSources(table, rows_read, dropped, selection, files, source)


def _with_measured(manifest: Manifest, tile: str, side: dict, table: pd.DataFrame, bands: Sequence[str]):
    """``table`` with each row's measured_* from the measured catalog's nearest object within the radius."""
    from scipy.spatial import cKDTree

    from realfake.cutouts.sources import source_table, with_fit

    spec = side["measured"]
    message = where(manifest.path, tile, side_name(side)) + "measured"
    measured = read_catalog(spec["path"], spec.get("hdu", 1), message)
    ra, dec = (_column(measured, column, f"{message}.radec").astype(np.float64) for column in spec["radec"])
    if len(measured) == 0 or len(table) == 0:
        return with_fit(table, table, np.zeros(len(table), dtype=bool), bands)
    radius = 2 * np.sin(np.radians(spec["match_radius_arcsec"] / 3600) / 2)  # chord on the unit sphere
    distance, nearest = cKDTree(_unit_vectors(ra, dec)).query(
        _unit_vectors(table["ra"].to_numpy(), table["dec"].to_numpy()), distance_upper_bound=radius
    )
    matched = np.isfinite(distance)
    rows = measured.iloc[np.where(matched, nearest, 0)].reset_index(drop=True)
    photometry = "flux" in spec or "mag" in spec
    fluxes = _fluxes(rows, spec, manifest, bands, message) if photometry else {}
    columns = {"id": np.zeros(len(rows), dtype=np.int64), "ra": rows[spec["radec"][0].lower()], "dec": 0.0}
    columns.update({f"flux_{band}": fluxes.get(band, np.full(len(rows), np.nan)) for band in bands})
    transmissions = _transmissions(rows, spec, bands, message)
    columns.update({f"mw_transmission_{band}": transmissions[band] for band in bands})
    shape = _shape(rows, {"shape": {"type": spec.get("type"), "size": spec.get("size")}}, message)
    fits = source_table(table["brickname"].iloc[0], "", pd.DataFrame(columns), bands, *shape.values())
    return with_fit(table, fits.set_axis(table.index), matched, bands)


def _unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(np.asarray(ra, dtype=np.float64)), np.radians(np.asarray(dec, dtype=np.float64))
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
