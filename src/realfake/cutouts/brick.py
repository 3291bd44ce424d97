"""One brick and kind: read its inputs, select and cut its sources, write its cutouts file."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from realfake import __version__, paths
from realfake.conventions import SURVEY_BANDS, brick_directory, channel_names
from realfake.cutouts import tile
from realfake.cutouts.settings import CutoutCounts, CutoutSettings
from realfake.cutouts.sources import fake_selection_view, fake_source_table, real_source_table
from realfake.cutouts.stamps import cut_sources
from realfake.cutouts.tile import run_tile_cutouts
from realfake.errors import RealfakeError
from realfake.formats.cutouts import PIXEL_CONVENTION, catalog_columns, column_descriptions, write_cutouts_file
from realfake.survey import legacy, legacysim, obiwan, runs
from realfake.survey.selection import select


@dataclass(frozen=True, eq=False)
class _Cutouts:
    """A brick's stamps, catalog, counts, the files read, and per-kind attributes."""

    catalog: pd.DataFrame
    stamps: np.ndarray
    counts: CutoutCounts
    inputs: list[str]
    attributes: dict[str, object]


def _real_cutouts(settings: CutoutSettings, brick_name: str) -> _Cutouts:
    if settings.cuts_reals_from_run:
        return _reals_from_run(settings, brick_name)
    tractor_path = Path(paths.dr5_file(settings.dr5_dir, "tractor", brick_name))
    tractor = legacy.read_tractor(tractor_path, settings.bands)
    selected = select(tractor, settings.selection, tractor_path)
    sources = real_source_table(tractor[selected], brick_name, settings.bands)
    read = CutoutCounts(sources_read=len(tractor))
    release = {"release": tractor.attrs["release"], "dropped_dup": tractor.attrs["dropped_dup"]}
    if settings.cuts_reals_from_rsdirs:
        made = _reals_from_rsdirs(settings, brick_name, sources)
        inputs = [str(tractor_path), *made.inputs]
        return _Cutouts(made.catalog, made.stamps, read + made.counts, inputs, {**release, **made.attributes})
    coadd = legacy.read_coadd(paths.dr5_file(settings.dr5_dir, "coadd_dir", brick_name), brick_name, settings.bands)
    catalog, stamps, counts = cut_sources(coadd, sources, settings)
    return _Cutouts(catalog, stamps, read + counts, [str(tractor_path), *map(str, coadd.paths)], release)


def _plain_run_files(settings: CutoutSettings, brick_name: str) -> tuple[str, str, str]:
    """The tractor catalog, coadd dir and (empty, where legacysim wrote one) injected catalog of ``brick_name`` in
    the plain run ``settings.real_run``, as strings."""
    tree, run = str(settings.obiwan_dir), settings.real_run
    return tuple(
        paths.legacysim_file(tree, filetype, brick_name, run) for filetype in ("tractor", "coadd_dir", "injected")
    )


def _reals_from_run(settings: CutoutSettings, brick_name: str) -> _Cutouts:
    """The real sources of the plain legacypipe run ``settings.real_run``: its own tractor catalog (legacypipe's
    fit of the run, DR9 columns) through the selection, cut from its own coadds. A run that injected fakes is
    refused: its coadds hold them."""
    run_dir = Path(settings.obiwan_dir) / settings.real_run
    if not run_dir.is_dir():
        found = legacysim.run_names(settings.obiwan_dir)
        raise RealfakeError(
            f"real run {settings.real_run} (config cutouts.real_run; flag --real-run) is not a run dir of "
            f"{settings.obiwan_dir}; its runs: {', '.join(found) or 'none'}"
        )
    tractor_path, coadd_dir, injected_path = map(Path, _plain_run_files(settings, brick_name))
    if not tractor_path.is_file():
        raise RealfakeError(
            f"brick {brick_name} has no tractor catalog in the real run {settings.real_run}: {tractor_path} "
            "not found (was the brick run without --injected-fn?)"
        )
    inputs = [str(tractor_path)]
    if injected_path.is_file():
        injected = legacysim.read_injected(injected_path)
        if len(injected) > 0:
            raise RealfakeError(
                f"real run {settings.real_run} injected {len(injected)} fakes into brick {brick_name} "
                f"({injected_path}): the reals need a plain run, run without --injected-fn (config cutouts.real_run)"
            )
        inputs.append(str(injected_path))
    tractor = legacy.read_tractor(tractor_path, settings.bands)
    selected = select(tractor, settings.selection, tractor_path)
    # Named by the run they are cut from, as the reals of the rs dirs are.
    sources = real_source_table(tractor[selected], brick_name, settings.bands).assign(rsdir=settings.real_run)
    coadd = legacy.read_coadd(coadd_dir, brick_name, settings.bands)
    catalog, stamps, counts = cut_sources(coadd, sources, settings)
    attributes = {"release": tractor.attrs["release"], "dropped_dup": tractor.attrs["dropped_dup"]}
    counts = CutoutCounts(sources_read=len(tractor)) + counts
    return _Cutouts(catalog, stamps, counts, [*inputs, *map(str, coadd.paths)], attributes)


def _near_fakes(sources: pd.DataFrame, simcat: pd.DataFrame, coadd: legacy.Coadd, radius: int) -> np.ndarray:
    """Whether each source has a fake of ``simcat`` within ``radius`` pixels in x and in y (both positions
    through the coadd's WCS, as the stamps are cut)."""
    if len(simcat) == 0 or len(sources) == 0:
        return np.zeros(len(sources), dtype=bool)
    from scipy.spatial import cKDTree

    source_x, source_y = legacy.wcs_pixel(coadd.wcs, sources["ra"], sources["dec"])
    fake_x, fake_y = legacy.wcs_pixel(coadd.wcs, simcat["ra"], simcat["dec"])
    distance, _ = cKDTree(np.column_stack([fake_x, fake_y])).query(np.column_stack([source_x, source_y]), p=np.inf)
    return distance <= radius


def _reals_from_rsdirs(settings: CutoutSettings, brick_name: str, sources: pd.DataFrame) -> _Cutouts:
    """The real sources cut from the rs dir coadds: each from the first rs dir with no fake near it."""
    catalogs, stamps, inputs, taken = [], [], [], []
    counts = CutoutCounts(sources_selected=len(sources))
    remaining = sources
    rsdirs = _rsdirs(settings, brick_name)
    for rsdir in rsdirs:
        simcat = runs.read_fake_catalog(rsdir)
        coadd = legacy.read_coadd(rsdir.coadd_dir, brick_name, settings.bands)
        inputs += [str(rsdir.simcat_path), *map(str, coadd.paths)]
        near = _near_fakes(remaining, simcat, coadd, settings.real_exclusion_radius)
        catalog, rsdir_stamps, rsdir_counts = cut_sources(coadd, remaining[~near].assign(rsdir=rsdir.name), settings)
        del coadd  # one rs dir's images in memory at a time
        # Selected once, above: each source counts where it was cut (or dropped), not in every rs dir.
        counts = counts + replace(rsdir_counts, sources_selected=0)
        catalogs.append(catalog)
        stamps.append(rsdir_stamps)
        taken.append(int((~near).sum()))
        remaining = remaining[near]
    counts = counts + CutoutCounts(dropped_near_fake=len(remaining))
    attributes = {"rsdirs": [rsdir.name for rsdir in rsdirs], "reals_per_rsdir": taken}
    return _Cutouts(pd.concat(catalogs, ignore_index=True), np.concatenate(stamps), counts, inputs, attributes)


def _median_transmission(tractor_path: Path, bands: Sequence[str]) -> dict[str, float] | None:
    """Per-band median ``mw_transmission_<b>`` of a tractor catalog, for every simcat band it has.

    None if the catalog is absent, empty, or lacks a valid transmission in one of ``bands``.
    """
    if not tractor_path.is_file():
        return None
    tractor = legacy.read_fits_table(tractor_path)
    medians = {
        band: float(np.median(tractor[f"mw_transmission_{band}"]))
        for band in SURVEY_BANDS
        if f"mw_transmission_{band}" in tractor.columns and len(tractor) > 0
    }
    usable = all(band in medians and np.isfinite(medians[band]) and medians[band] > 0 for band in bands)
    return medians if usable else None


def _read_fakes(settings: CutoutSettings, brick_name: str, rsdir: obiwan.RsDir) -> tuple[pd.DataFrame, list[str], str]:
    """The fakes of ``rsdir`` with Milky Way transmissions, the files read, and where the transmissions came from.

    An older-schema simcat and a legacysim injected catalog have no transmissions: they are the per-band
    median of the rs dir's (run's) tractor catalog if it has them, else of the DR5 brick's.
    """
    simcat = runs.read_fake_catalog(rsdir)
    missing = [band for band in settings.bands if band not in simcat.attrs["bands"]]
    if missing:
        raise RealfakeError(
            f"fake catalog {rsdir.simcat_path} has no flux in band(s) {', '.join(missing)} (it has "
            f"{', '.join(simcat.attrs['bands'])}): the fakes were not injected there; leave {', '.join(missing)} "
            "out of the bands"
        )
    if simcat.attrs["schema"] == "current":
        return simcat, [str(rsdir.simcat_path)], f"{rsdir.name}: simcat"
    dr5_tractor = Path(paths.dr5_file(settings.dr5_dir, "tractor", brick_name))
    for tractor_path in (rsdir.tractor_path, dr5_tractor):
        transmission = _median_transmission(tractor_path, settings.bands)
        if transmission is not None:
            simcat = runs.read_fake_catalog(rsdir, transmission)
            return simcat, [str(rsdir.simcat_path), str(tractor_path)], f"{rsdir.name}: median of {tractor_path}"
    columns = ", ".join(f"mw_transmission_{band}" for band in settings.bands)
    raise RealfakeError(
        f"fake catalog {rsdir.simcat_path} ({simcat.attrs['schema']} schema) has no Milky Way transmission, and "
        f"neither {rsdir.tractor_path} nor {dr5_tractor} exists with rows and columns {columns}"
    )


def _rsdirs(settings: CutoutSettings, brick_name: str) -> list[obiwan.RsDir]:
    rsdirs = runs.find_runs(settings.obiwan_dir, brick_name, settings.injector, settings.excluded_runs)
    if not rsdirs:
        raise _no_rsdirs(settings, brick_name)
    return rsdirs


def _no_rsdirs(settings: CutoutSettings, brick_name: str) -> RealfakeError:
    if settings.injector == "legacysim":
        excluded = f", but the plain run {settings.real_run} (cutouts.real_run)" if settings.excluded_runs else ""
        return RealfakeError(
            f"brick {brick_name} has no legacysim run (file<F>_rs<R>_skip<S>/sim/{brick_directory(brick_name)}/"
            f"injected-{brick_name}.fits) under {settings.obiwan_dir}{excluded}"
        )
    return RealfakeError(f"brick {brick_name} has no obiwan rs dir with a simcat under {settings.obiwan_dir}")


def _sim_cutouts(settings: CutoutSettings, brick_name: str) -> _Cutouts:
    rsdirs = _rsdirs(settings, brick_name)
    catalogs, stamps, inputs, transmission_sources, fits_from, releases = [], [], [], [], [], []
    counts, dropped_dup, collided = CutoutCounts(), 0, []
    for rsdir in rsdirs:
        simcat, files_read, transmission_source = _read_fakes(settings, brick_name, rsdir)
        tractor = None
        if rsdir.tractor_path.is_file():
            tractor = legacy.read_tractor(rsdir.tractor_path, settings.bands)
            releases.append(tractor.attrs["release"])
            dropped_dup += tractor.attrs["dropped_dup"]
            files_read = list(dict.fromkeys([*files_read, str(rsdir.tractor_path)]))
        fits_from.append("" if tractor is None else str(rsdir.tractor_path))
        sources = fake_source_table(simcat, brick_name, rsdir.name, settings.bands, tractor)
        if settings.select_fakes:
            sources = sources[select(fake_selection_view(simcat), settings.selection, rsdir.simcat_path)]
        coadd = legacy.read_coadd(rsdir.coadd_dir, brick_name, settings.bands)
        catalog, rsdir_stamps, rsdir_counts = cut_sources(coadd, sources, settings)
        inputs += [*files_read, *map(str, coadd.paths)]
        del coadd  # one rs dir's images in memory at a time
        counts = counts + CutoutCounts(sources_read=len(simcat)) + rsdir_counts
        catalogs.append(catalog)
        stamps.append(rsdir_stamps)
        transmission_sources.append(transmission_source)
        collided.append(simcat.attrs.get("collided", 0))
    attributes = {
        "rsdirs": [rsdir.name for rsdir in rsdirs],
        "mw_transmission_source": transmission_sources,
        "fits_from": fits_from,
        # The rs dirs' tractor catalogs the fits come from: their release(s), "" when none was read.
        "release": ",".join(dict.fromkeys(releases)),
        "dropped_dup": dropped_dup,
        # Per rs dir (run): legacysim's rows not injected in it, skipped (0 for obiwan's simcats).
        "collided": collided,
    }
    return _Cutouts(pd.concat(catalogs, ignore_index=True), np.concatenate(stamps), counts, inputs, attributes)


def input_files(settings: CutoutSettings, brick_name: str) -> list[str]:
    """The files :func:`run_cutouts` may read for this brick and kind, as they are on disk now.

    Both kinds: the brick table. Real: the DR5 tractor catalog and coadd image
    and inverse variance per band (with ``real_source="rsdir"``: the DR5
    tractor catalog, and per rs dir its simcat and coadds; with ``real_source="run"``: the plain run's
    tractor catalog, its injected catalog where it has one, which must be empty, and its coadds). Sim: per rs
    dir its simcat and coadds, and
    the tractor catalog an older-schema simcat would take its Milky Way
    transmission from (the rs dir's if it exists, else the DR5 brick's if that
    exists). With ``injector="legacysim"`` the rs dirs are the legacysim runs holding the brick (but the plain
    run of ``real_source="run"``), and a simcat is a run's injected catalog (which has no transmissions
    either). The workflow plans each
    brick's job with these, for every brick of the survey, so they are built as strings (pathlib would
    dominate a 100k-brick dry run: scripts/bench_dryrun.py). With a manifest: the manifest and the files it
    names for the tile's side of this kind (:func:`realfake.cutouts.tile.input_files`).
    """
    if settings.manifest is not None:
        return tile.input_files(settings, brick_name)
    dr5_dir = str(settings.dr5_dir)
    files = [str(legacy.find_brick_table(dr5_dir))]
    if settings.cuts_reals_from_run:
        tractor_path, coadd_dir, injected_path = _plain_run_files(settings, brick_name)
        coadd_dirs = [coadd_dir]
        files.append(tractor_path)
        if os.path.isfile(injected_path):
            files.append(injected_path)
    elif settings.cuts_reals_from_rsdirs:
        files.append(paths.dr5_file(dr5_dir, "tractor", brick_name))
        rsdirs = runs.run_locations(settings.obiwan_dir, brick_name, settings.injector)
        if not rsdirs:
            raise _no_rsdirs(settings, brick_name)
        coadd_dirs = [coadd_dir for _, _, coadd_dir, _, _ in rsdirs]
        files += [simcat_path for _, _, _, simcat_path, _ in rsdirs]
    elif settings.kind == "real":
        coadd_dirs = [paths.dr5_file(dr5_dir, "coadd_dir", brick_name)]
        files.append(paths.dr5_file(dr5_dir, "tractor", brick_name))
    else:
        rsdirs = runs.run_locations(settings.obiwan_dir, brick_name, settings.injector, settings.excluded_runs)
        if not rsdirs:
            raise _no_rsdirs(settings, brick_name)
        coadd_dirs = [coadd_dir for _, _, coadd_dir, _, _ in rsdirs]
        dr5_tractor = paths.dr5_file(dr5_dir, "tractor", brick_name)
        for _, _, _, simcat_path, tractor_path in rsdirs:
            files.append(simcat_path)
            if os.path.isfile(tractor_path):
                files.append(tractor_path)
            elif dr5_tractor not in files and os.path.isfile(dr5_tractor):
                files.append(dr5_tractor)
    names = [paths.coadd_name(brick_name, kind, band) for band in settings.bands for kind in paths.COADD_KINDS]
    for coadd_dir in coadd_dirs:
        files += [os.path.join(coadd_dir, name) for name in names]
    return files


def expected_attributes(settings: CutoutSettings, brick_name: str) -> dict[str, object]:
    """The attributes that identify what a cutouts file was made for and from (checked before trusting it):
    the settings, and the trees it was read from (the DR5 tree; for fakes, and reals cut from the fakes' tree,
    the obiwan tree too, and the plain run ``real_run`` when one is named, which the fakes' runs leave out),
    so that a file made from another tree is never taken for this one's. With a manifest: the tile's
    (:func:`realfake.cutouts.tile.expected_attributes`)."""
    if settings.manifest is not None:
        return tile.expected_attributes(settings, brick_name)
    expected = {
        "kind": settings.kind,
        "brickname": brick_name,
        "bands": list(settings.bands),
        "channels": channel_names(settings.bands),
        "stamp_size": settings.stamp_size,
        "selection": settings.applied_selection,
        "select_fakes": settings.select_fakes,
        "pad_edges": settings.pad_edges,
        "dr5_dir": str(settings.dr5_dir),
    }
    if settings.kind == "real":
        expected["real_source"] = settings.real_source
    if settings.cuts_reals_from_rsdirs:
        expected["real_exclusion_radius"] = settings.real_exclusion_radius
    if settings.kind == "sim" or settings.cuts_reals_from_rsdirs or settings.cuts_reals_from_run:
        expected["obiwan_dir"] = str(settings.obiwan_dir)
        expected["injector"] = settings.injector
    if settings.excluded_runs and "obiwan_dir" in expected:  # the runs were read, the plain run left out
        expected["real_run"] = settings.real_run
    return expected


def read_survey_bricks(dr5_dir: Path) -> tuple[Path, dict[str, legacy.Brick]]:
    """The path of the DR5 brick table and its bricks by name."""
    table_path = legacy.find_brick_table(dr5_dir)
    return table_path, legacy.read_brick_table(table_path)


def run_cutouts(
    settings: CutoutSettings,
    brick_name: str,
    out: Path,
    survey_bricks: tuple[Path, dict[str, legacy.Brick]] | None = None,
) -> CutoutCounts:
    """Write the cutouts file of one brick and kind to ``out``; return its counts. With a manifest
    (``settings.manifest``), ``brick_name`` is a tile's file name or name, and
    :func:`realfake.cutouts.tile.run_tile_cutouts` makes its file.

    The file (see :mod:`realfake.formats.cutouts`) has ``stamps`` float32
    (N, S, S, 2B), ``catalog/<column>`` (:data:`realfake.formats.cutouts.CATALOG_DESCRIPTION`, N rows),
    and attributes: ``kind``, ``brickname``, ``bands``, ``channels``,
    ``stamp_size``, ``pixel_convention``, ``selection`` (the one these sources
    passed, a name or an expression; "none" for fakes without ``select_fakes``), ``select_fakes``,
    ``pad_edges``, ``inputs`` (every file read), ``dr5_dir``, ``obiwan_dir``,
    ``package_version``, the counts (:class:`CutoutCounts`), ``release`` and
    ``dropped_dup`` (the data release, "dr5" ... "dr10", of the tractor catalog
    read, and the DUP rows dropped from it: for reals the brick's catalog; for
    fakes the rs dirs' catalogs their fits come from, releases joined by commas,
    "" and 0 when none was read), for reals
    ``real_source`` (with "rsdir" also ``real_exclusion_radius``, ``rsdirs`` and
    ``reals_per_rsdir``, the stamps cut from each; with "run" ``real_run``, the plain run cut from, whose tractor
    catalog gives ``release``, and which the fakes' files record too, as the run they left out) and for
    fakes ``rsdirs``,
    ``mw_transmission_source`` (per rs dir: "simcat" or the tractor
    catalog whose median was used), ``fits_from`` (per rs dir: the tractor
    catalog the fits come from, or "") and ``collided`` (per rs dir: the rows of a legacysim
    injected catalog not injected in that run, skipped; 0 for a simcat). With ``obiwan_dir`` comes
    ``injector``, the code that made that tree; a legacysim run's name is its ``rsdir``.

    Every input is read and checked before anything is written; a problem
    raises RealfakeError naming the file or brick, and no file appears at ``out``.
    ``survey_bricks`` (from :func:`read_survey_bricks`) saves re-reading the
    brick table for each brick of a batch.
    """
    if settings.manifest is not None:
        return run_tile_cutouts(settings, brick_name, out)
    brick_directory(brick_name)
    table_path, bricks = survey_bricks or read_survey_bricks(settings.dr5_dir)
    legacy.lookup_brick(bricks, brick_name, table_path)
    made = _real_cutouts(settings, brick_name) if settings.kind == "real" else _sim_cutouts(settings, brick_name)
    attributes = {
        **expected_attributes(settings, brick_name),
        "pixel_convention": PIXEL_CONVENTION,
        "inputs": [str(table_path), *made.inputs],
        "dr5_dir": str(settings.dr5_dir),
        "obiwan_dir": str(settings.obiwan_dir) if settings.obiwan_dir is not None else "",
        "package_version": __version__,
        **asdict(made.counts),
        **made.attributes,
    }
    catalog = made.catalog[catalog_columns(settings.bands)].reset_index(drop=True)
    write_cutouts_file(out, made.stamps, catalog, attributes, column_descriptions(settings.bands))
    return made.counts
