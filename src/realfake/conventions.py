"""The conventions every stage shares, defined once: bands, channels, labels, kinds, splits, stamps, bricks.

- Bands: any of ``g``, ``r``, ``i``, ``z`` (:data:`SURVEY_BANDS`, in wavelength
  order), ``g``, ``r``, ``z`` by default (:data:`BANDS`). DR5 to DR9 observed g, r
  and z only (DR5 catalogs carry u, i, Y columns, always zero; DR9's have no i);
  DR10 adds i where DECam observed it, which is not every brick.
- Channels of a stamp: the bands (nanomaggies per pixel), then their inverse
  variances (1/nanomaggy^2), named ``ivar_<band>``: ``g, r, z, ivar_g, ivar_r,
  ivar_z`` (:func:`channel_names`). Inverse variance 0 means no data.
- Labels: real = 0, fake = 1 (:data:`LABELS`): the CNN's second softmax column
  is P(fake).
- Kinds: the cutouts stage's two kinds of source are ``real`` (DR5 tractor
  catalog, cut from the DR5 coadds) and ``sim`` (obiwan's simulated sources,
  cut from the rs dirs' coadds, which obiwan calls "sim"). A ``sim`` stamp is
  a ``fake`` example: :data:`KIND_OF_LABEL` is the one mapping between the
  two words.
- Splits of a shard set: ``train``, ``validation`` (carved from the training
  examples, what training monitors), ``test`` (read only by evaluation). A
  shard set cross-fitted in K >= 2 folds of bricks is stored in parts
  ``fold<j>-train`` and ``fold<j>-validation`` (:func:`part_name`,
  :func:`fold_parts`) from which each model's splits are assembled.
- Stamps: 64 x 64 pixels (:data:`STAMP_SIZE`), the source within half a pixel
  of pixel (S/2, S/2), 0-indexed; rows are y, columns x.
- Bricks: DR5 names ``RRRR[pm]DDD`` (RA x 10, p/m for the sign of Dec, |Dec| x
  10, e.g. 1238p245); a brick's files sit in the directory named by its first
  three characters (:func:`brick_directory`).

Nothing here imports more than the standard library, so the Snakefile's
planning (``workflow/rules/common.smk``) imports the same definitions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from realfake.errors import RealfakeError

BANDS = ("g", "r", "z")
SURVEY_BANDS = ("g", "r", "i", "z")
INVERSE_VARIANCE_PREFIX = "ivar_"
LABELS = {"real": 0, "fake": 1}
KINDS = ("real", "sim")
KIND_OF_LABEL = {0: "real", 1: "sim"}
# The injection codes whose output trees the fakes are read from (realfake.survey.runs): obiwan's rs dirs
# (legacysurvey/obiwan, DR5) or legacysim's runs (adematti/legacysim, legacypipe DR9.6.9).
INJECTORS = ("obiwan", "legacysim")
SPLITS = ("train", "validation", "test")
# The roles of a fold's examples in a cross-fitted shard set (its test is the whole fold).
FOLD_ROLES = ("train", "validation")
STAMP_SIZE = 64
BRICK_NAME_PATTERN = r"\d{4}[pm]\d{3}"
_BRICK_NAME = re.compile(BRICK_NAME_PATTERN)
# A legacysim run dir at the top of its tree: file<F>_rs<R>_skip<S> (input file id, first row injected, re-injection
# round; legacysim's get_randoms_id), also the name of a plain legacypipe run of legacysim.
LEGACYSIM_RUN_PATTERN = r"file(\d+)_rs(\d+)_skip(\d+)"
_LEGACYSIM_RUN_NAME = re.compile(LEGACYSIM_RUN_PATTERN)


def channel_names(bands: Sequence[str]) -> list[str]:
    """Stamp channels: the bands, then their inverse variances: ["g", "r", "z", "ivar_g", "ivar_r", "ivar_z"]."""
    return [*bands, *(inverse_variance_channel(band) for band in bands)]


def bands_in(columns: Sequence[str], template: str = "flux_{band}") -> tuple[str, ...]:
    """The survey bands whose ``template`` column is among ``columns``, in :data:`SURVEY_BANDS` order:
    ("g", "r", "i", "z") for a DR10 catalog's flux_g, flux_r, flux_i, flux_z."""
    present = set(columns)
    return tuple(band for band in SURVEY_BANDS if template.format(band=band) in present)


def inverse_variance_channel(band: str) -> str:
    """The name of a band's inverse-variance channel: "ivar_g" for "g"."""
    return f"{INVERSE_VARIANCE_PREFIX}{band}"


def is_inverse_variance(channel_name: str) -> bool:
    """Whether a channel holds inverse variances (``ivar_<band>``) rather than fluxes."""
    return channel_name.startswith(INVERSE_VARIANCE_PREFIX)


def bands_of(channel_names: Sequence[str]) -> tuple[str, ...]:
    """The flux channels' band names: ("g", "r", "z") from ("g", "r", "z", "ivar_g", ...)."""
    return tuple(name for name in channel_names if not is_inverse_variance(name))


def is_brick_name(name: object) -> bool:
    """Whether ``name`` is a DR5 brick name like 1238p245."""
    return isinstance(name, str) and _BRICK_NAME.fullmatch(name) is not None


def legacysim_run_key(name: str) -> tuple[int, int, int] | None:
    """(F, R, S) of a legacysim run dir name ``file<F>_rs<R>_skip<S>``, to order runs numerically; None for a
    name that is not one."""
    match = _LEGACYSIM_RUN_NAME.fullmatch(name)
    return None if match is None else tuple(int(part) for part in match.groups())


def legacysim_run_problem(name: str) -> str | None:
    """Why ``name`` is not a legacysim run dir name (``file<F>_rs<R>_skip<S>``, F, R, S integers), or None."""
    if legacysim_run_key(name) is not None:
        return None
    return f"{name!r} is not a legacysim run dir name, file<F>_rs<R>_skip<S> (e.g. file0_rs0_skip0)"


def brick_directory(brick_name: str) -> str:
    """The directory a brick's files sit in, in DR5 and obiwan trees: "123" for 1238p245.

    RealfakeError for a name that is not a DR5 brick name.
    """
    if not is_brick_name(brick_name):
        raise RealfakeError(f"brick name {brick_name!r} is not of the DR5 form RRRR[pm]DDD, e.g. 1238p245")
    return brick_name[:3]


# A manifest tile's file name (tile_file_name): a DR5 brick name is one.
TILE_FILE_PATTERN = r"[A-Za-z0-9._-]+"
_UNSAFE_IN_FILE_NAMES = re.compile(r"[^A-Za-z0-9._-]")


def tile_file_name(tile: str) -> str:
    """A manifest tile's name as a file name: every character other than letters, digits, ``.``, ``_`` and
    ``-`` becomes ``_`` ("lsst_cells_v1:10321:66" -> "lsst_cells_v1_10321_66"); a DR5 brick name stays itself.
    A manifest whose tiles share a file name is refused (:func:`realfake.manifest.load_manifest`)."""
    return _UNSAFE_IN_FILE_NAMES.sub("_", tile)


def name_directory(file_name: str) -> str:
    """The directory of a brick's or tile's cutouts file: its first three characters (a brick's
    :func:`brick_directory`)."""
    return file_name[:3]


def parse_brick_list(text: str, source: str) -> list[str]:
    """The brick names of a brick list, one per line; blank lines and text after # are ignored.

    ``source`` names the list in errors. RealfakeError naming the line for a
    name that is not a DR5 brick name or one listed twice, and for a list with
    no bricks.
    """
    names, seen = [], set()  # a set alongside the list: a survey's brick list has 100k names
    for line_number, line in enumerate(text.splitlines(), start=1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if not is_brick_name(name):
            raise RealfakeError(f"{source}, line {line_number}: {name!r} is not a DR5 brick name like 1238p245")
        if name in seen:
            raise RealfakeError(f"{source}, line {line_number}: brick {name} is listed twice")
        seen.add(name)
        names.append(name)
    if not names:
        raise RealfakeError(f"{source} lists no bricks")
    return names


def part_name(fold: int, role: str) -> str:
    """The name of one part of a shard set cross-fitted in folds: "fold2-validation" for fold 2's validation
    examples (``role`` one of :data:`FOLD_ROLES`). Its files are ``x<part>_<k>.npy``, ``y<part>_<k>.npy`` and
    ``<part>_catalog.parquet``."""
    if role not in FOLD_ROLES:
        raise ValueError(f"unknown fold role {role!r}; one of {', '.join(FOLD_ROLES)}")
    return f"fold{fold}-{role}"


def fold_parts(folds: int) -> list[str]:
    """The parts a shard set of ``folds`` folds is stored in, in file order: the splits (:data:`SPLITS`) for one
    fold; else fold0-train, fold0-validation, fold1-train, ... (:func:`part_name`)."""
    if folds == 1:
        return list(SPLITS)
    return [part_name(fold, role) for fold in range(folds) for role in FOLD_ROLES]


PIXEL_BINS = 4  # magnitude bins of the class-mean stamps and profiles
