"""Injection run manifests (docs/manifest.md): one YAML file naming, per tile, the real and fake pixels and
catalogs of any injection code (legacysim, Rubin source_injection, Balrog), and how to read them.

- :mod:`realfake.manifest.load`: the schema (``schema.yaml``) and the semantic checks, :class:`Manifest`;
- :mod:`realfake.manifest.pixels`: a side's pixels as a :class:`realfake.survey.legacy.Coadd` in nanomaggies;
- :mod:`realfake.manifest.sources`: a side's catalog as a cutouts source table.
"""

from realfake.manifest.load import Manifest, input_files, load_manifest, tile_file_name, where
from realfake.manifest.pixels import read_side
from realfake.manifest.sources import side_sources

__all__ = ["Manifest", "input_files", "load_manifest", "read_side", "side_sources", "tile_file_name", "where"]
