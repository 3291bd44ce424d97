"""Cutouts: 64 x 64 stamps of real (tractor) and fake (obiwan simcat) sources, one HDF5 file per brick and kind.

Both kinds go through one code path, so nothing but the pixels can tell a
real stamp from a fake one (``docs/data_layout.md`` lists what went wrong in the
original obiwan code when they did not):

- Position: ``x, y`` come from the catalog's ``ra, dec`` through the WCS of
  the coadd the stamp is cut from (:func:`realfake.survey.legacy.wcs_pixel`, origin 0:
  0-indexed pixels, pixel centres at integers). Tractor ``bx, by`` and simcat
  ``x, y`` are never used.
- Stamp: centred on the nearest pixel, ``centre = floor(coordinate + 0.5)``;
  stamp pixel ``[i, j]`` is image pixel ``[centre_y - S/2 + i, centre_x - S/2 + j]``
  (rows = y, columns = x), so the source sits at stamp pixel
  ``(S/2 + offset_y, S/2 + offset_x)`` with offsets in [-0.5, 0.5).
- Magnitude: ``nanomaggies_to_mag(flux / mw_transmission)`` (dereddened AB) for
  both; the stored flux is the observed one (the simcat's includes extinction,
  like the tractor's).
- Drops: a stamp that leaves the image is dropped as ``off_image`` (with
  ``pad_edges`` it is kept, padded with image 0 and inverse variance 0, as long
  as its centre pixel is on the image); a source whose centre pixel has
  inverse variance 0 in any band is dropped as ``no_coverage``.

Real sources are the tractor catalog (DR5 to DR10: :mod:`realfake.survey.tractor`) of the brick passing
a selection, named or an expression (:mod:`realfake.survey.selection`, default ``elg_padded``). Fakes are every
simcat row of every rs dir of the brick (:func:`realfake.survey.obiwan.find_rsdirs`),
each cut from the coadd of the rs dir it was injected in. Fakes are *not* cut
by the selection unless ``select_fakes``: a simcat holds the *true* parameters
obiwan drew (already in the parameter space of interest), while the selection
box is meant for *measured* tractor values; cutting true values with it would
shape the two classes' distributions differently.

| module | responsibility |
| --- | --- |
| ``settings.py`` | :class:`CutoutSettings` (what to make) and :class:`CutoutCounts` (what happened) |
| ``sources.py`` | source tables: real and fake sources with the same columns, fakes with their fits |
| ``stamps.py`` | :func:`cut_stamps`: the one code path from (ra, dec) to a stamp |
| ``brick.py`` | :func:`run_cutouts`: one brick and kind, its inputs (:func:`input_files`) and its file |
| ``batch.py`` | :func:`run_cutouts_batch`: a brick list, split across MPI ranks |
| ``file.py`` | the cutouts file: its format, writer, reader, completeness check and content digest |
"""

from realfake.conventions import KINDS
from realfake.cutouts.batch import run_cutouts_batch
from realfake.cutouts.brick import (
    expected_attributes,
    input_files,
    read_survey_bricks,
    run_cutouts,
)
from realfake.cutouts.settings import DEFAULT_SELECTION, CutoutCounts, CutoutSettings
from realfake.cutouts.sources import fake_source_table, fake_type, real_source_table
from realfake.cutouts.stamps import KEPT, NO_COVERAGE, OFF_IMAGE, StampCut, cut_stamps
from realfake.formats.cutouts import CATALOG_DESCRIPTION, TEXT_CATALOG_COLUMNS, catalog_columns, column_descriptions

__all__ = [
    "CATALOG_DESCRIPTION",
    "DEFAULT_SELECTION",
    "KEPT",
    "KINDS",
    "NO_COVERAGE",
    "OFF_IMAGE",
    "TEXT_CATALOG_COLUMNS",
    "CutoutCounts",
    "CutoutSettings",
    "StampCut",
    "catalog_columns",
    "column_descriptions",
    "cut_stamps",
    "expected_attributes",
    "fake_source_table",
    "fake_type",
    "input_files",
    "run_cutouts",
    "run_cutouts_batch",
    "read_survey_bricks",
    "real_source_table",
]
