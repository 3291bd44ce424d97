"""The fakes' side of a brick, whichever code injected them (``injector``, :data:`realfake.conventions.INJECTORS`):
obiwan's rs dirs (:mod:`realfake.survey.obiwan`) or legacysim's runs (:mod:`realfake.survey.legacysim`).

Both are described alike, as :class:`realfake.survey.obiwan.RsDir` (a legacysim run's ``simcat_path`` is its
injected catalog, its ``layout`` "legacysim"), and their fake catalogs read into the same table, so the
cutouts stage does not care which code made them.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path

import pandas as pd

from realfake.conventions import INJECTORS
from realfake.errors import RealfakeError
from realfake.survey import legacysim, obiwan


def _check_injector(injector: str) -> None:
    if injector not in INJECTORS:
        raise RealfakeError(f"unknown injector {injector!r}; one of {', '.join(INJECTORS)}")


def run_locations(
    tree: Path | str, brick_name: str, injector: str, exclude: Collection[str] = ()
) -> list[obiwan.RsDirLocation]:
    """The rs dirs (obiwan) or runs (legacysim) of ``brick_name`` under ``tree``, in order, as (name, layout,
    coadd dir, fake catalog, re-fit tractor catalog) strings (for planning), but those named in ``exclude``.

    ``exclude`` names the runs that are not the fakes': legacysim's plain legacypipe run (no injected catalog
    given) writes the same layout and an empty ``injected-<brick>.fits``, so it would otherwise be taken for a
    run of fakes; the cutouts exclude the plain run they cut the reals from (``real_source="run"``)."""
    _check_injector(injector)
    if injector == "legacysim":
        return legacysim.run_locations(tree, brick_name, exclude)
    return [location for location in obiwan.rsdir_locations(tree, brick_name) if location[0] not in exclude]


def find_runs(tree: Path | str, brick_name: str, injector: str, exclude: Collection[str] = ()) -> list[obiwan.RsDir]:
    """:func:`run_locations` as :class:`realfake.survey.obiwan.RsDir` objects; [] when the brick has none."""
    return [
        obiwan.RsDir(name, layout, Path(coadd_dir), Path(catalog), Path(tractor))
        for name, layout, coadd_dir, catalog, tractor in run_locations(tree, brick_name, injector, exclude)
    ]


def read_fake_catalog(run: obiwan.RsDir, mw_transmission: Mapping[str, float] | None = None) -> pd.DataFrame:
    """The fakes injected in ``run`` (:func:`realfake.survey.obiwan.read_simcat`'s table, whichever the code):
    a simcat, or a legacysim injected catalog (or a DR9-era obiwan ``randoms-<brick>.fits``, the same format)
    without its collided rows."""
    if run.layout in (legacysim.SCHEMA, "dr9"):
        return legacysim.read_injected(run.simcat_path, mw_transmission)
    return obiwan.read_simcat(run.simcat_path, mw_transmission)


def tree_problem(tree: Path | str, injector: str) -> str | None:
    """Why ``tree`` does not look like an output tree of ``injector``, or None: a legacysim tree keeps its run
    dirs (``file<F>_rs<R>_skip<S>``) at its top; an obiwan tree keeps ``obiwan/`` (or an object type's dir,
    the older layout) there, and no run dirs."""
    _check_injector(injector)
    runs = legacysim.run_names(tree)
    if injector == "legacysim" and not runs:
        return f"{tree} has no legacysim run dir (file<F>_rs<R>_skip<S>) at its top"
    if injector == "obiwan" and runs and not os.path.isdir(os.path.join(str(tree), "obiwan")):
        return f"{tree} holds legacysim run dirs ({runs[0]}, ...) at its top and no obiwan/: a legacysim tree"
    return None
