"""One manifest tile and kind (docs/manifest.md): its real side, or every fake run, cut as a brick's are.

The tile's file name (:func:`realfake.manifest.tile_file_name`) plays the brick's part: the cutouts file's
``brickname`` attribute and catalog column; the tile's own name is the ``tile`` attribute.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from realfake import __version__
from realfake.conventions import channel_names, tile_file_name
from realfake.cutouts.settings import CutoutCounts, CutoutSettings
from realfake.cutouts.stamps import cut_sources
from realfake.errors import RealfakeError
from realfake.formats.cutouts import PIXEL_CONVENTION, catalog_columns, column_descriptions, write_cutouts_file
from realfake.manifest import Manifest, load_manifest, read_side, side_sources, where


def _manifest(settings: CutoutSettings) -> Manifest:
    manifest = load_manifest(settings.manifest)
    missing = [band for band in settings.bands if band not in manifest.bands]
    if missing:
        raise RealfakeError(
            f"{where(manifest.path)}bands {list(manifest.bands)} lack the band(s) cut: {', '.join(missing)}"
        )
    return manifest


def expected_attributes(settings: CutoutSettings, file_name: str, manifest: Manifest | None = None) -> dict:
    """The attributes that identify a tile's cutouts file: the settings, the tile, and the manifest (its path
    and the SHA-256 of its bytes: an edited manifest gives other files)."""
    manifest = manifest or _manifest(settings)
    file_name = tile_file_name(file_name)
    return {
        "kind": settings.kind,
        "brickname": file_name,
        "tile": manifest.tile(file_name)["tile"],
        "bands": list(settings.bands),
        "channels": channel_names(settings.bands),
        "stamp_size": settings.stamp_size,
        "pad_edges": settings.pad_edges,
        "manifest": str(settings.manifest),
        "manifest_sha256": manifest.sha256,
    }


def input_files(settings: CutoutSettings, file_name: str) -> list[str]:
    """The files the cutouts of a tile and kind read: the manifest, then the files it names for that side."""
    from realfake.manifest import input_files as manifest_input_files

    return manifest_input_files(load_manifest(settings.manifest), file_name, settings.kind)


def run_tile_cutouts(settings: CutoutSettings, file_name: str, out: Path) -> CutoutCounts:
    """Write the cutouts file of one tile and kind to ``out`` (:func:`realfake.cutouts.run_cutouts`'s format);
    return its counts. Attributes beyond a brick's: ``tile``, ``manifest``, ``manifest_sha256``, ``runs`` (the
    sides cut: "real" or the fake runs), ``selection`` and ``dropped_rows`` per side (the select expression or
    "none"; "expression: rows" for each drop expression), ``flux_unit``, ``zeropoint`` and ``flux_factor``
    (pixels and fluxes times it are nanomaggies), ``mw_transmission_source`` per side."""
    manifest = _manifest(settings)
    file_name = tile_file_name(file_name)
    entry = manifest.tile(file_name)
    sides = [entry["real"]] if settings.kind == "real" else entry["fake"]
    catalogs, stamps, inputs, selections, dropped, transmissions = [], [], [str(manifest.path)], [], [], []
    counts = CutoutCounts()
    for side in sides:
        sources = side_sources(manifest, file_name, side, settings.bands)
        coadd = read_side(manifest, file_name, side, settings.bands)
        catalog, side_stamps, side_counts = cut_sources(coadd, sources.table, settings)
        inputs += [*sources.files, *map(str, coadd.paths)]
        del coadd  # one side's images in memory at a time
        counts = counts + CutoutCounts(sources_read=sources.rows_read) + side_counts
        catalogs.append(catalog)
        stamps.append(side_stamps)
        selections.append(sources.selection)
        dropped.append("; ".join(f"{expression}: {rows}" for expression, rows in sources.dropped.items()))
        transmissions.append(sources.mw_transmission_source)
    attributes = {
        **expected_attributes(settings, file_name, manifest),
        "pixel_convention": PIXEL_CONVENTION,
        "inputs": list(dict.fromkeys(inputs)),
        "package_version": __version__,
        "runs": [side.get("run", "real") for side in sides],
        "selection": selections,
        "dropped_rows": dropped,
        "flux_unit": manifest.unit,
        "zeropoint": manifest.zeropoint,
        "flux_factor": manifest.flux_factor,
        "mw_transmission_source": transmissions,
        **asdict(counts),
    }
    catalog = pd.concat(catalogs, ignore_index=True)[catalog_columns(settings.bands)]
    write_cutouts_file(out, np.concatenate(stamps), catalog, attributes, column_descriptions(settings.bands))
    return counts
