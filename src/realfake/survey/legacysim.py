"""Reading legacysim's outputs: the runs of a brick and their injected catalogs.

legacysim (adematti/legacysim, obiwan's successor on legacypipe DR9.6.9) keeps one directory per run,
``file<F>_rs<R>_skip<S>``, at the top of its output tree, and below it legacypipe's layout
(:func:`realfake.paths.legacysim_file`): the run's coadds, ``sim/<AAA>/injected-<brick>.fits`` (what was
injected) and the re-fit ``tractor/<AAA>/tractor-<brick>.fits`` (DR9 columns, read with
:func:`realfake.survey.legacy.read_tractor`). ``F`` is the input catalog's file id, ``R`` its first row
injected, ``S`` > 0 re-injects the sources that collided in run ``S - 1`` (../shared/FORMATS.md section 2).
A plain run (legacysim without ``--injected-fn``: plain legacypipe into the same layout, with an empty injected
catalog) is named like any run; :func:`run_locations` leaves out the runs it is told are not the fakes'.

:func:`read_injected` gives the same normalised table as :func:`realfake.survey.obiwan.read_simcat`, so a
run stands where an rs dir stands (its name is the ``rsdir`` of the cutouts catalog). Any problem a user can
cause raises :class:`~realfake.errors.RealfakeError` naming the file, brick or column.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.conventions import LEGACYSIM_RUN_PATTERN, bands_in
from realfake.errors import RealfakeError
from realfake.paths import legacysim_file
from realfake.survey.legacy import add_dereddened, read_fits_table

INJECTED_COLUMNS = (
    "id", "ra", "dec", "bx", "by", "flux_g", "flux_r", "flux_z", "sersic", "shape_r", "shape_e1", "shape_e2",
    "collided",
)  # fmt: skip
RUN_NAME = re.compile(f"^{LEGACYSIM_RUN_PATTERN}$")
SCHEMA = "legacysim"


def read_injected(path: Path, mw_transmission: Mapping[str, float] | None = None) -> pd.DataFrame:
    """A legacysim ``injected-<brick>.fits`` as :func:`realfake.survey.obiwan.read_simcat` gives a simcat:
    one row per fake injected in the run, the ``collided`` rows (not injected in this run: legacysim defers
    them to the next ``skip`` run) left out and counted in ``attrs["collided"]``.

    Columns: ``id`` (int64); ``ra, dec`` (deg); ``x, y`` (0-indexed pixel: legacysim's ``bx, by``, stored
    0-indexed) and ``x_fits, y_fits`` (1-indexed, ``bx + 1``); ``flux_g, flux_r, flux_z`` (observed
    nanomaggies, Milky Way extinction included); ``mw_transmission_<b>``, which the file does not have: from
    ``mw_transmission`` keyed by band, else NaN; ``flux_dered_<b>``, ``mag_dered_<b>``; ``sersic_n`` (the
    file's ``sersic``); ``rhalf`` (``shape_r``, half-light radius, arcsec); ``e1, e2`` (``shape_e1,
    shape_e2``, legacypipe's ellipticity, |e| = (1 - b/a) / (1 + b/a), the reduced shear of the simcats);
    ``schema`` ("legacysim"). ``attrs``: ``path``, ``schema``, ``collided``, ``bands`` (those with a
    ``flux_<b>`` column: g, r, z, and i where the run injected in it, as DR10's would).
    """
    path = Path(path)
    source = read_fits_table(path)
    missing = [column for column in INJECTED_COLUMNS if column not in source.columns]
    if missing:
        raise RealfakeError(f"legacysim injected catalog {path} lacks column(s) {', '.join(missing)}")
    collided = source["collided"].to_numpy().astype(bool)
    source = source[~collided].reset_index(drop=True)

    frame = pd.DataFrame({"id": source["id"].astype(np.int64)})
    for column in ("ra", "dec"):
        frame[column] = source[column].astype(np.float64)
    frame["x"] = source["bx"].astype(np.float64)
    frame["y"] = source["by"].astype(np.float64)
    frame["x_fits"] = frame["x"] + 1.0
    frame["y_fits"] = frame["y"] + 1.0
    bands = bands_in(source.columns)  # g, r, z: required; i where the run injected in it
    for band in bands:
        frame[f"flux_{band}"] = source[f"flux_{band}"].astype(np.float64)
    for band in bands:
        known = mw_transmission is not None and band in mw_transmission
        frame[f"mw_transmission_{band}"] = float(mw_transmission[band]) if known else np.nan
    add_dereddened(frame, bands)
    frame["rhalf"] = source["shape_r"].astype(np.float64)
    frame["sersic_n"] = source["sersic"].astype(np.float64)
    frame["e1"] = source["shape_e1"].astype(np.float64)
    frame["e2"] = source["shape_e2"].astype(np.float64)
    frame["schema"] = SCHEMA
    frame.attrs.update(path=str(path), schema=SCHEMA, collided=int(collided.sum()), bands=bands)
    return frame


def run_names(legacysim_dir: Path | str) -> list[str]:
    """The run directories (``file<F>_rs<R>_skip<S>``) at the top of a legacysim tree, ordered by F, R, S
    numerically; other entries are ignored, a missing tree has none."""
    try:
        names = [name for name in os.listdir(str(legacysim_dir)) if RUN_NAME.match(name)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(names, key=run_name_key)


def run_name_key(name: str) -> tuple[int, ...]:
    """(F, R, S) of a run name ``file<F>_rs<R>_skip<S>``, to order runs numerically."""
    return tuple(int(part) for part in RUN_NAME.match(name).groups())


def run_locations(
    legacysim_dir: Path | str, brick_name: str, exclude: Collection[str] = ()
) -> list[tuple[str, str, str, str, str]]:
    """The runs of a legacysim tree that hold an injected catalog of ``brick_name``, in :func:`run_names`
    order, as (name, "legacysim", coadd dir, injected catalog, re-fit tractor catalog) strings, the tuples of
    :func:`realfake.survey.obiwan.rsdir_locations` (for planning). The runs named in ``exclude`` are left out:
    a plain legacypipe run (no ``--injected-fn``) writes an empty injected catalog, so only its name tells it
    from a run of fakes (:func:`realfake.survey.runs.run_locations`)."""
    legacysim_dir = str(legacysim_dir)
    locations = []
    for name in run_names(legacysim_dir):
        if name in exclude:
            continue
        coadd_dir, injected, tractor = (
            legacysim_file(legacysim_dir, filetype, brick_name, name)
            for filetype in ("coadd_dir", "injected", "tractor")
        )
        if os.path.isfile(injected):
            locations.append((name, SCHEMA, coadd_dir, injected, tractor))
    return locations
