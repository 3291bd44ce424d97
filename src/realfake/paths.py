"""Where DR5 and obiwan files are: one function per tree, in the spirit of legacypipe's
``LegacySurveyData.find_file(filetype, brick=..., band=...)``.

Every DR5 and obiwan path the code reads, writes (the mock survey) or plans (the
workflow) is built here (``docs/data_layout.md`` has the layouts). Paths are
strings, not ``pathlib.Path``: planning lists them for every brick of a survey
(100k), and pathlib's parsing would dominate the dry run
(``scripts/bench_dryrun.py``).

- :func:`dr5_file`: ``brick_table``, ``coadd_dir``, ``image``, ``invvar``, ``tractor``.
- :func:`obiwan_file`: ``coadd_dir``, ``image``, ``invvar``, ``simcat``,
  ``tractor`` of one rs dir, in the ``current`` layout
  (``<out>/{coadd,obiwan,tractor}/<AAA>/<brick>/<rsdir>/``), the ``older`` one
  (``<out>/<objtype>/<AAA>/<brick>/<rsdir>/{coadd,obiwan,tractor}/``) or the DR9-era ``dr9`` one
  (adematti/obiwan: the ``current`` dirs, runs ``file<F>_rs<R>_skip<S>`` for rs dirs, and
  ``randoms-<brick>.fits`` for the simcat).
- :func:`legacysim_file`: ``coadd_dir``, ``image``, ``invvar``, ``injected``, ``tractor`` of one
  legacysim run, ``<out>/<run>/{coadd/<AAA>/<brick>,sim/<AAA>,tractor/<AAA>}/``.
- :func:`coadd_name`: ``legacysurvey-<brick>-{image,invvar}-<band>.fits.fz``.

And this project's own files of a brick list:

- :func:`cutouts_path`: a brick's cutouts file, ``<out>/<AAA>/<brick>.h5`` (a ``Path``: it is
  opened, not planned; the workflow writes its pattern out in full).
- :func:`read_brick_list`: the brick names of a brick-list file.
"""

from __future__ import annotations

import os
from pathlib import Path

from realfake.conventions import brick_directory, is_brick_name, name_directory, parse_brick_list, tile_file_name
from realfake.errors import RealfakeError

COADD_KINDS = ("image", "invvar")
BRICK_TABLE_NAMES = ("survey-bricks.fits.gz", "survey-bricks.fits")
DR5_FILETYPES = ("brick_table", "coadd_dir", "image", "invvar", "tractor")
OBIWAN_FILETYPES = ("coadd_dir", "image", "invvar", "simcat", "tractor")
LAYOUTS = ("current", "older", "dr9")
LEGACYSIM_FILETYPES = ("coadd_dir", "image", "invvar", "injected", "tractor")


def coadd_name(brick_name: str, kind: str, band: str) -> str:
    """``legacysurvey-<brick>-<kind>-<band>.fits.fz``; kind is "image" or "invvar"."""
    if kind not in COADD_KINDS:
        raise RealfakeError(f"coadd kind {kind!r} is not one of {', '.join(COADD_KINDS)}")
    brick_directory(brick_name)
    return f"legacysurvey-{brick_name}-{kind}-{band}.fits.fz"


def brick_table_candidates(dr5_dir: str) -> list[str]:
    """Where the brick table of a survey tree may be, in order: ``survey-bricks.fits.gz`` (as the releases ship
    it), ``survey-bricks.fits`` (the mock's), in ``dr5_dir`` and then in its parent: DR8-DR10 keep coadd/ and
    tractor/ in a region directory (``dr9/south``) and the one brick table above it (``dr9/survey-bricks.fits.gz``;
    the per-region ``survey-bricks-dr9-south.fits.gz`` tables are summaries without the brick edges)."""
    parent = os.path.dirname(os.path.normpath(dr5_dir))
    return [os.path.join(directory, name) for directory in (dr5_dir, parent) for name in BRICK_TABLE_NAMES]


def dr5_file(dr5_dir: str, filetype: str, brick_name: str | None = None, band: str | None = None) -> str:
    """A file or directory of a DR5 tree rooted at ``dr5_dir``.

    ``brick_table``: ``survey-bricks.fits.gz`` if it exists, else
    ``survey-bricks.fits`` (the mock writes this one); ``coadd_dir``:
    ``coadd/<AAA>/<brick>``; ``image``, ``invvar``: that dir's coadd of
    ``band``; ``tractor``: ``tractor/<AAA>/tractor-<brick>.fits``.
    """
    dr5_dir = str(dr5_dir)
    if filetype == "brick_table":
        candidates = brick_table_candidates(dr5_dir)
        return next((path for path in candidates if os.path.isfile(path)), candidates[1])
    if filetype not in DR5_FILETYPES:
        raise ValueError(f"unknown DR5 file type {filetype!r}; one of {', '.join(DR5_FILETYPES)}")
    directory = brick_directory(brick_name)
    if filetype == "tractor":
        return os.path.join(dr5_dir, "tractor", directory, f"tractor-{brick_name}.fits")
    coadd_dir = os.path.join(dr5_dir, "coadd", directory, brick_name)
    if filetype == "coadd_dir":
        return coadd_dir
    return os.path.join(coadd_dir, coadd_name(brick_name, filetype, band))


def obiwan_file(
    obiwan_dir: str,
    filetype: str,
    brick_name: str,
    rsdir: str,
    band: str | None = None,
    layout: str = "current",
    objtype: str = "elg",
) -> str:
    """A file or directory of one rs dir of an obiwan tree rooted at ``obiwan_dir``.

    ``coadd_dir``; ``image``, ``invvar``: its coadd of ``band``; ``simcat``:
    ``simcat-<objtype>-<brick>.fits`` (layout ``dr9``: ``randoms-<brick>.fits``, legacysim's injected
    catalog by another name); ``tractor``: legacypipe's re-fit of the rs dir, ``tractor-<brick>.fits``
    (may not exist).
    """
    if filetype not in OBIWAN_FILETYPES:
        raise ValueError(f"unknown obiwan file type {filetype!r}; one of {', '.join(OBIWAN_FILETYPES)}")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown obiwan layout {layout!r}; one of {', '.join(LAYOUTS)}")
    brick_path = os.path.join(str(obiwan_dir), "{product}", brick_directory(brick_name), brick_name, rsdir)
    if layout in ("current", "dr9"):
        products = {product: brick_path.format(product=product) for product in ("coadd", "obiwan", "tractor")}
    else:
        rsdir_path = brick_path.format(product=objtype)
        products = {product: os.path.join(rsdir_path, product) for product in ("coadd", "obiwan", "tractor")}
    if filetype == "coadd_dir":
        return products["coadd"]
    if filetype in COADD_KINDS:
        return os.path.join(products["coadd"], coadd_name(brick_name, filetype, band))
    if filetype == "simcat":
        name = f"randoms-{brick_name}.fits" if layout == "dr9" else f"simcat-{objtype}-{brick_name}.fits"
        return os.path.join(products["obiwan"], name)
    return os.path.join(products["tractor"], f"tractor-{brick_name}.fits")


def legacysim_file(legacysim_dir: str, filetype: str, brick_name: str, run: str, band: str | None = None) -> str:
    """A file or directory of one run (``file<F>_rs<R>_skip<S>``) of a legacysim tree rooted at ``legacysim_dir``.

    ``coadd_dir``: ``<run>/coadd/<AAA>/<brick>``; ``image``, ``invvar``: its coadd of ``band``;
    ``injected``: ``<run>/sim/<AAA>/injected-<brick>.fits``, the sources injected (or not: ``collided``);
    ``tractor``: legacypipe's re-fit of the run, ``<run>/tractor/<AAA>/tractor-<brick>.fits`` (may not exist).
    """
    if filetype not in LEGACYSIM_FILETYPES:
        raise ValueError(f"unknown legacysim file type {filetype!r}; one of {', '.join(LEGACYSIM_FILETYPES)}")
    run_dir = os.path.join(str(legacysim_dir), run)
    if filetype == "injected":
        return os.path.join(run_dir, "sim", brick_directory(brick_name), f"injected-{brick_name}.fits")
    # The rest of a run is legacypipe's own layout, as a release's tree is.
    return dr5_file(run_dir, filetype, brick_name, band)


def obiwan_rsdir_parent(obiwan_dir: str, brick_name: str, layout: str, objtype: str = "elg") -> str:
    """The directory whose children are a brick's rs dirs in ``layout`` (where their simcats are found)."""
    product = objtype if layout == "older" else "obiwan"
    return os.path.join(str(obiwan_dir), product, brick_directory(brick_name), brick_name)


def cutouts_path(out_dir: Path, brick_name: str) -> Path:
    """``<out_dir>/<AAA>/<brick>.h5``, the batch mode's (and the workflow's) file of a brick; of a manifest tile
    (by name or file name) ``<out_dir>/<its file name's first three characters>/<file name>.h5``."""
    name = brick_name if is_brick_name(brick_name) else tile_file_name(brick_name)
    return Path(out_dir) / name_directory(name) / f"{name}.h5"


def read_tile_list(path: Path) -> list[str]:
    """Tile names (of a manifest) from a text file, one per line; blank lines are ignored (a tile name may hold
    ``#``, so nothing is a comment). RealfakeError for a missing file, a repeated name or no name."""
    path = Path(path)
    if not path.is_file():
        raise RealfakeError(f"tile list not found: {path}")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names or len(set(names)) != len(names):
        raise RealfakeError(f"tile list {path} lists no tile, or a tile twice")
    return names


def read_brick_list(path: Path) -> list[str]:
    """Brick names from a text file, one per line; blank lines and text after # are ignored
    (:func:`realfake.conventions.parse_brick_list`: a bad or repeated name is an error naming its line)."""
    path = Path(path)
    if not path.is_file():
        raise RealfakeError(f"brick list not found: {path}")
    return parse_brick_list(path.read_text(), str(path))
