"""Loading an injection run manifest (docs/manifest.md): the JSON schema (``schema.yaml``), then the checks a
schema cannot make; the result is a :class:`Manifest` of plain dicts with absolute paths.

Every problem is a :class:`~realfake.errors.RealfakeError` naming the manifest, and where they apply the tile,
the side (``real`` or ``fake run <run>``), the band and the key: ``manifest run.yaml: tile 10321:66, fake run
injected, band r: weight missing``.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from realfake.conventions import tile_file_name
from realfake.errors import RealfakeError

# AB zero points of the units a manifest may name without one: AB mag = zeropoint - 2.5 log10(flux / unit).
# 1 nanomaggy = 3631 nJy exactly (the AB definition), so nJy's is 22.5 + 2.5 log10(3631) = 31.39999...
KNOWN_ZEROPOINTS = {"nanomaggy": 22.5, "nJy": 22.5 + 2.5 * math.log10(3631.0)}
# A zero point given with a known unit may differ from the unit's by this much (31.4 for nJy is 4e-6 off).
ZEROPOINT_TOLERANCE_MAG = 1e-3
NANOMAGGY_ZEROPOINT = 22.5


@dataclass(frozen=True)
class Manifest:
    """A checked manifest. ``tiles``: {file name: tile entry} in manifest order, each entry the manifest's dict
    with every ``path`` made absolute; ``flux_factor``: what pixels and fluxes are multiplied by to be
    nanomaggies, ``10**(-0.4 (zeropoint - 22.5))``; ``sha256``: of the manifest file's bytes."""

    path: Path
    bands: tuple[str, ...]
    unit: str
    zeropoint: float
    flux_factor: float
    tiles: dict[str, dict]
    sha256: str

    def tile(self, file_name: str) -> dict:
        """The entry of a tile, by its file name (:func:`tile_file_name`) or its name."""
        for name, entry in self.tiles.items():
            if file_name in (name, entry["tile"]):
                return entry
        raise RealfakeError(f"manifest {self.path}: no tile {file_name!r} (tiles: {', '.join(self.tiles)})")


def where(manifest_path: Path | str, tile: str | None = None, side: str | None = None, band: str | None = None) -> str:
    """The prefix of a message: "manifest <path>: tile <t>, <side>, band <b>" (parts left out when None)."""
    parts = [part for part in (tile and f"tile {tile}", side, band and f"band {band}") if part]
    return f"manifest {manifest_path}: " + ", ".join(parts) + (": " if parts else "")


def side_name(side: dict) -> str:
    """The side's name in messages: real, or fake run <run>."""
    return f"fake run {side['run']}" if "run" in side else "real"


def _schema() -> dict:
    return yaml.safe_load(resources.files("realfake.manifest").joinpath("schema.yaml").read_text())


def _schema_problem(manifest_path: Path, document: object, error) -> str:
    """A schema error as a message naming the tile, side, band and key of its place in the document."""
    place = list(error.absolute_path)
    tile = side = band = None
    keys = []
    if len(place) >= 2 and place[0] == "tiles" and isinstance(place[1], int):
        entry = document["tiles"][place[1]]
        tile = str(entry.get("tile", f"#{place[1] + 1}")) if isinstance(entry, dict) else f"#{place[1] + 1}"
        rest = place[2:]
        if rest[:1] == ["real"]:
            side, rest = "real", rest[1:]
        elif rest[:1] == ["fake"] and len(rest) >= 2:
            run = entry["fake"][rest[1]]
            side = f"fake run {run.get('run', '#' + str(rest[1] + 1))}" if isinstance(run, dict) else "fake"
            rest = rest[2:]
        if len(rest) >= 2 and rest[0] in ("image", "weight", "mask"):
            band, rest = str(rest[1]), [rest[0], *rest[2:]]
        keys = rest
    else:
        keys = place
    key = ".".join(str(part) for part in keys) or "(top level)"
    hint = ""
    if keys == ["tile"] and not isinstance(error.instance, str):
        hint = " (quote tile names: YAML reads an unquoted 10321:66 as the number 619326)"
    return f"{where(manifest_path, tile, side, band)}{key}: {error.message}{hint}"


def _check_schema(manifest_path: Path, document: object) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(document), key=lambda error: list(map(str, error.absolute_path)))
    if errors:
        raise RealfakeError("\n".join(_schema_problem(manifest_path, document, error) for error in errors))


def _zeropoint(manifest_path: Path, flux: dict) -> float:
    unit, given = flux["unit"], flux.get("zeropoint")
    known = KNOWN_ZEROPOINTS.get(unit)
    if given is None and known is None:
        raise RealfakeError(
            f"{where(manifest_path)}flux.zeropoint missing: unit {unit!r} is not one of "
            f"{', '.join(KNOWN_ZEROPOINTS)}, whose zero points are known"
        )
    if given is not None and known is not None and abs(given - known) > ZEROPOINT_TOLERANCE_MAG:
        raise RealfakeError(
            f"{where(manifest_path)}flux.zeropoint {given} disagrees with unit {unit} (AB zero point {known:.6f})"
        )
    # A known unit's exact zero point: 31.4 for nJy would scale every flux by 4e-6.
    return known if known is not None else float(given)


def _absolute(manifest_path: Path, path: str) -> str:
    return str((manifest_path.parent / path).resolve()) if not Path(path).is_absolute() else path


def _check_side(manifest_path: Path, bands: tuple[str, ...], tile: str, side: dict, catalog_key: str) -> None:
    """Every band has an image and a weight (and a mask, when any band has one), no band is unknown, the
    catalog gives flux or mag for every band, and no-data mask bits come with a mask; paths made absolute."""
    name = side_name(side)
    for key in ("image", "weight", "mask"):
        if key == "mask" and key not in side:
            continue
        for band in side[key]:
            if band not in bands:
                raise RealfakeError(f"{where(manifest_path, tile, name, band)}{key}: band not in bands {list(bands)}")
        for band in bands:
            if band not in side[key]:
                raise RealfakeError(f"{where(manifest_path, tile, name, band)}{key} missing")
            side[key][band] = [_absolute(manifest_path, side[key][band][0]), side[key][band][1]]
    if ("mask" in side) != ("mask_planes" in side or "mask_bits" in side):
        raise RealfakeError(
            f"{where(manifest_path, tile, name)}mask needs mask_planes or mask_bits (the bits meaning no data), "
            "and they need a mask"
        )
    catalogs = [(catalog_key, side[catalog_key])] + ([("measured", side["measured"])] if "measured" in side else [])
    for key, catalog in catalogs:
        catalog["path"] = _absolute(manifest_path, catalog["path"])
        if key == "measured" and "flux" not in catalog and "mag" not in catalog:
            continue  # a measured catalog without photometry gives the matches' type and size only
        for band in bands:
            given = [column for column in ("flux", "mag") if band in catalog.get(column, {})]
            if len(given) != 1:
                problem = "flux or mag missing" if not given else "both flux and mag given"
                raise RealfakeError(f"{where(manifest_path, tile, name, band)}{key}.{problem}")


def load_manifest(path: Path | str) -> Manifest:
    """Read and check the manifest at ``path`` (see the module docstring for the errors). The last few
    manifests loaded are kept while their files are unchanged (size and modification time): planning and a
    batch ask for a manifest once per tile."""
    manifest_path = Path(path)
    if not manifest_path.is_file():
        raise RealfakeError(f"manifest {manifest_path} not found")
    status = manifest_path.stat()
    return _load(manifest_path, status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _load(manifest_path: Path, size: int, modified_ns: int) -> Manifest:
    """:func:`load_manifest` of a file of this size and modification time (the cache's key)."""
    content = manifest_path.read_bytes()
    try:
        document = yaml.safe_load(content)
    except yaml.YAMLError as error:
        raise RealfakeError(f"manifest {manifest_path} is not valid YAML: {error}") from None
    _check_schema(manifest_path, document)
    bands = tuple(document["bands"])
    zeropoint = _zeropoint(manifest_path, document["flux"])
    tiles: dict[str, dict] = {}
    for entry in document["tiles"]:
        tile = entry["tile"]
        file_name = tile_file_name(tile)
        if file_name in tiles:
            raise RealfakeError(
                f"{where(manifest_path, tile)}tile: its file name {file_name} is also that of tile "
                f"{tiles[file_name]['tile']}"
            )
        _check_side(manifest_path, bands, tile, entry["real"], "sources")
        runs = [run["run"] for run in entry["fake"]]
        if len(set(runs)) != len(runs):
            raise RealfakeError(f"{where(manifest_path, tile)}fake: run names repeat: {runs}")
        for run in entry["fake"]:
            _check_side(manifest_path, bands, tile, run, "truth")
        tiles[file_name] = entry
    return Manifest(
        manifest_path,
        bands,
        document["flux"]["unit"],
        zeropoint,
        10 ** (-0.4 * (zeropoint - NANOMAGGY_ZEROPOINT)),
        tiles,
        hashlib.sha256(content).hexdigest(),
    )


def input_files(manifest: Manifest, file_name: str, kind: str) -> list[str]:
    """The files the cutouts of one tile and kind read (the manifest first): the real side's pixels and
    sources, or every fake run's pixels, truth and measured catalogs, each once, in manifest order."""
    entry = manifest.tile(file_name)
    sides = [entry["real"]] if kind == "real" else entry["fake"]
    files = [str(manifest.path)]
    for side in sides:
        for key in ("image", "weight", "mask"):
            files += [side[key][band][0] for band in manifest.bands if key in side]
        for key in ("sources", "truth", "measured"):
            if key in side:
                files.append(side[key]["path"])
    return list(dict.fromkeys(files))
