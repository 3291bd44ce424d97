"""Reading obiwan's outputs: the rs dirs of a brick (either layout) and their simcats.

The coadds and tractor catalogs of an rs dir are in legacypipe's formats (DR5's for
obiwan's own runs) and are read with :mod:`realfake.survey.legacy`
(:func:`realfake.survey.legacy.read_coadd`, :func:`realfake.survey.legacy.read_tractor`,
which reads the catalogs of any release from DR5 to DR10), whose pixel and unit conventions
hold here too: simcat ``x, y`` are 1-indexed FITS pixels, exposed as ``x_fits,
y_fits`` with 0-indexed ``x, y``, and fluxes are dereddened as the reals' are.

Any problem a user can cause raises :class:`~realfake.errors.RealfakeError`
naming the file, brick or column.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.conventions import bands_in, brick_directory
from realfake.errors import RealfakeError
from realfake.paths import obiwan_file, obiwan_rsdir_parent
from realfake.survey.legacy import add_dereddened, read_fits_table
from realfake.survey.legacysim import RUN_NAME, run_name_key

RSDIR_PREFIXES = ("rs", "skip_rs", "more_rs", "more_skip_rs")
SIMCAT_CURRENT_COLUMNS = (
    "id", "ra", "dec", "x", "y", "gflux", "rflux", "zflux",
    "mw_transmission_g", "mw_transmission_r", "mw_transmission_z", "n", "rhalf", "e1", "e2",
)  # fmt: skip
SIMCAT_OLDER_COLUMNS = (
    "id", "seed", "ra", "dec", "x", "y", "gflux", "rflux", "zflux", "sersicn", "rhalf", "ba", "phi",
)  # fmt: skip

_RSDIR_NAME = re.compile(r"^(rs|skip_rs|more_rs|more_skip_rs)(\d+)$")


def read_simcat(path: Path, mw_transmission: Mapping[str, float] | None = None) -> pd.DataFrame:
    """An obiwan simcat (either schema) as one normalised DataFrame, one row per injected fake.

    Columns: ``id`` (int64); ``ra, dec`` (deg); ``x_fits, y_fits`` (1-indexed
    FITS pixel, as stored) and ``x, y`` (0-indexed, FITS minus 1);
    ``flux_g, flux_r, flux_z`` (observed nanomaggies, Milky Way extinction
    included); ``mw_transmission_g/r/z`` (from the file when it has them, else
    from ``mw_transmission`` keyed by band, else NaN); ``flux_dered_<b> =
    flux_<b> / mw_transmission_<b>`` and ``mag_dered_<b>``; ``sersic_n``;
    ``rhalf`` (half-light radius, arcsec); ``e1, e2`` (reduced-shear
    ellipticity, ``galsim.Shear(g1=e1, g2=e2)``, pixel frame); ``schema``.

    The older schema stores axis ratio ``ba`` and position angle ``phi``
    (degrees); obiwan drew ``galsim.Shear(q=ba, beta=phi * degrees)``, so
    ``g = (1 - ba) / (1 + ba)``, ``e1 = g cos(2 phi)``, ``e2 = g sin(2 phi)``.

    ``attrs["path"]`` (str), ``attrs["schema"]`` ("current" or "older") and ``attrs["bands"]`` (the bands
    with a ``<b>flux`` column: g, r, z, and i where the simcat has it) are set.
    """
    path = Path(path)
    source = read_fits_table(path)
    schema = _simcat_schema(source, path)

    frame = pd.DataFrame({"id": source["id"].astype(np.int64)})
    for column in ("ra", "dec"):
        frame[column] = source[column].astype(np.float64)
    frame["x_fits"] = source["x"].astype(np.float64)
    frame["y_fits"] = source["y"].astype(np.float64)
    frame["x"] = frame["x_fits"] - 1.0
    frame["y"] = frame["y_fits"] - 1.0
    bands = bands_in(source.columns, "{band}flux")  # g, r, z: required; i where the fakes were drawn in it
    for band in bands:
        frame[f"flux_{band}"] = source[f"{band}flux"].astype(np.float64)
    for band in bands:
        if f"mw_transmission_{band}" in source.columns:
            transmission = source[f"mw_transmission_{band}"].astype(np.float64)
        elif mw_transmission is not None and band in mw_transmission:
            transmission = float(mw_transmission[band])
        else:
            transmission = np.nan
        frame[f"mw_transmission_{band}"] = transmission
    add_dereddened(frame, bands)

    frame["rhalf"] = source["rhalf"].astype(np.float64)
    _add_shape(frame, source, schema)
    frame["schema"] = schema
    frame.attrs["path"] = str(path)
    frame.attrs["schema"] = schema
    frame.attrs["bands"] = bands
    return frame


def _simcat_schema(source: pd.DataFrame, path: Path) -> str:
    """Which schema the simcat table ``source`` (read from ``path``) has: "current" or "older"; a RealfakeError
    naming the columns each lacks when neither."""
    missing_current = [column for column in SIMCAT_CURRENT_COLUMNS if column not in source.columns]
    missing_older = [column for column in SIMCAT_OLDER_COLUMNS if column not in source.columns]
    if not missing_current:
        return "current"
    if not missing_older:
        return "older"
    raise RealfakeError(
        f"simcat {path} matches neither schema: missing current-schema column(s) "
        f"{', '.join(missing_current)}; missing older-schema column(s) {', '.join(missing_older)}"
    )


def _add_shape(frame: pd.DataFrame, source: pd.DataFrame, schema: str) -> None:
    """Add ``sersic_n`` and the reduced-shear ellipticity ``e1, e2`` of the simcat table ``source`` (of
    ``schema``) to ``frame``, in place: the older schema's ``ba`` and ``phi`` converted (see :func:`read_simcat`)."""
    if schema == "current":
        frame["sersic_n"] = source["n"].astype(np.float64)
        frame["e1"] = source["e1"].astype(np.float64)
        frame["e2"] = source["e2"].astype(np.float64)
    else:
        axis_ratio = source["ba"].to_numpy(np.float64)
        two_beta = np.deg2rad(2.0 * source["phi"].to_numpy(np.float64))
        shear = (1.0 - axis_ratio) / (1.0 + axis_ratio)
        frame["sersic_n"] = source["sersicn"].astype(np.float64)
        frame["e1"] = shear * np.cos(two_beta)
        frame["e2"] = shear * np.sin(two_beta)


@dataclass(frozen=True)
class RsDir:
    """One obiwan chunk ("rs dir") of a brick: its coadd dir, simcat and tractor catalog.

    layout: "current" (``<out>/{coadd,obiwan,tractor}/<AAA>/<brick>/<rsdir>/``),
    "older" (``<out>/<objtype>/<AAA>/<brick>/<rsdir>/{coadd,obiwan,tractor}/``),
    "dr9" (the DR9-era obiwan, adematti/obiwan: "current"'s dirs with runs ``file<F>_rs<R>_skip<S>``
    for rs dirs and a ``randoms-<brick>.fits`` in legacysim's injected-catalog format for the simcat) or
    "legacysim" (a legacysim run, :mod:`realfake.survey.legacysim`). ``tractor_path`` may not exist.
    """

    name: str
    layout: str
    coadd_dir: Path
    simcat_path: Path
    tractor_path: Path


def _rsdir_name_key(rsdir: tuple[str, ...]) -> tuple[int, ...]:
    match = _RSDIR_NAME.match(rsdir[0])
    if match is None:
        return run_name_key(rsdir[0])
    return RSDIR_PREFIXES.index(match.group(1)), int(match.group(2))


# The rs dir names of each layout: obiwan's chunks, or the DR9-era runs.
_LAYOUT_NAMES = {"current": _RSDIR_NAME, "older": _RSDIR_NAME, "dr9": RUN_NAME}


def _rsdir_locations(obiwan_dir: str, layout: str, brick_name: str, name: str, objtype: str) -> tuple[str, str, str]:
    """(coadd dir, simcat, tractor catalog) of rs dir ``name`` in ``layout``, as strings (for planning)."""
    return tuple(
        obiwan_file(obiwan_dir, filetype, brick_name, name, layout=layout, objtype=objtype)
        for filetype in ("coadd_dir", "simcat", "tractor")
    )


def find_rsdirs(obiwan_dir: Path, brick_name: str, objtype: str = "elg") -> list[RsDir]:
    """The rs dirs holding a simcat for ``brick_name`` under the obiwan output dir, in order.

    Order: prefix rs, skip_rs, more_rs, more_skip_rs, then N numerically (DR9-era runs: F, R, S
    numerically); dirs with other names are ignored. Returns [] when there are none; raises when the
    brick has rs dirs in more than one layout.
    """
    return [
        RsDir(name, layout, Path(coadd_dir), Path(simcat_path), Path(tractor_path))
        for name, layout, coadd_dir, simcat_path, tractor_path in rsdir_locations(obiwan_dir, brick_name, objtype)
    ]


RsDirLocation = tuple[str, str, str, str, str]


def rsdir_locations(obiwan_dir: Path | str, brick_name: str, objtype: str = "elg") -> list[RsDirLocation]:
    """:func:`find_rsdirs` as string tuples (name, layout, coadd dir, simcat, tractor catalog), for planning."""
    obiwan_dir = str(obiwan_dir)
    brick_path = os.path.join(brick_directory(brick_name), brick_name)
    found: dict[str, list[RsDirLocation]] = {}
    # Each layout's rs dirs are the children of the dir that holds their simcat dirs.
    for layout, pattern in _LAYOUT_NAMES.items():
        parent = obiwan_rsdir_parent(obiwan_dir, brick_name, layout, objtype)
        try:
            names = [name for name in os.listdir(parent) if pattern.match(name)]
        except (FileNotFoundError, NotADirectoryError):
            names = []
        rsdirs = [(name, layout, *_rsdir_locations(obiwan_dir, layout, brick_name, name, objtype)) for name in names]
        found[layout] = sorted((rsdir for rsdir in rsdirs if os.path.isfile(rsdir[3])), key=_rsdir_name_key)
    places = {
        "current": f"rs dirs in obiwan/{brick_path}",
        "older": f"rs dirs in {objtype}/{brick_path}",
        "dr9": f"DR9-era runs (file<F>_rs<R>_skip<S>) in obiwan/{brick_path}",
    }
    layouts = [layout for layout in found if found[layout]]
    if len(layouts) > 1:
        raise RealfakeError(
            f"brick {brick_name} has obiwan outputs in {'both' if len(layouts) == 2 else 'all three'} layouts under "
            f"{obiwan_dir} "
            f"({' and '.join(places[layout] for layout in layouts)}); keep one"
        )
    return found[layouts[0]] if layouts else []
