"""The shards stage's index: every stamp of every input cutouts file, from the files' catalogs (no stamps read).

:func:`index_cutouts` lists the cutouts files of the real and the fake directory
(every ``*.h5`` under them, or a brick list's files: :func:`realfake.paths.cutouts_path`),
checks each (readable, its stamps' shape as its attributes say, made from the
given DR5 and obiwan trees by the given injector, or cut through the given
manifest as it is now: :func:`expected_inputs`; the same channels and stamp
size as the first file, one real source for all real files) and returns one
row per stamp: its file, row, label, brick and matching values, about 20 bytes
an example.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from realfake.conventions import LABELS
from realfake.errors import RealfakeError
from realfake.formats.cutouts import file_content_digest, read_attribute_text, read_cutouts_catalog
from realfake.manifest import load_manifest
from realfake.paths import cutouts_path
from realfake.shards.placement import matching_values
from realfake.shards.settings import ShardSettings


@dataclass(frozen=True)
class Source:
    """One cutouts file: its path, kind, number of stamps and content identity."""

    path: Path
    kind: str
    count: int
    digest: str


def _cutouts_files(directory: Path, kind: str, bricks: list[str] | None) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise RealfakeError(f"{kind} cutouts directory not found: {directory}")
    if bricks is None:
        return sorted(directory.rglob("*.h5"))
    paths = [cutouts_path(directory, name) for name in bricks]
    missing = [path for path in paths if not path.is_file()]
    if missing:
        raise RealfakeError(f"{kind} cutouts file not found: {missing[0]} ({len(missing)} missing)")
    return paths


def _describe(path: Path) -> tuple[dict, int, str]:
    """The attributes, stamp count and content identity of a cutouts file; RealfakeError naming it if unreadable."""
    try:
        with h5py.File(path, "r") as cutouts:
            attributes = {key: read_attribute_text(value) for key, value in cutouts.attrs.items()}
            shape = cutouts["stamps"].shape
        digest = file_content_digest(path)
    except (OSError, KeyError) as error:
        raise RealfakeError(
            f"cannot read cutouts file {path} ({error}); it is truncated or corrupt: delete it, and its "
            f"cutouts job (or `realfake cutouts`) makes it again"
        ) from None
    for key in ("channels", "stamp_size", "bands"):
        if key not in attributes:
            raise RealfakeError(f"cutouts file {path} lacks the attribute {key!r}")
    size = int(attributes["stamp_size"])
    if len(shape) != 4 or shape[1:] != (size, size, len(attributes["channels"])):
        raise RealfakeError(f"cutouts file {path}: stamps of shape {shape} do not match its attributes")
    return attributes, shape[0], digest


def _same_path(recorded: object, given: Path) -> bool:
    recorded = str(recorded or "")
    return bool(recorded) and (
        os.path.normpath(recorded) == os.path.normpath(str(given))
        or os.path.abspath(recorded) == os.path.abspath(str(given))
    )


# The attributes that record what a cutouts file was made from, as its error names each: a path, or a value.
RECORDED_INPUTS = {
    "dr5_dir": "the DR5 tree",
    "obiwan_dir": "the obiwan tree",
    "injector": "a fakes' tree made by",
    "manifest": "the manifest",
    "manifest_sha256": "a manifest of SHA-256",
}
PATH_INPUTS = ("dr5_dir", "obiwan_dir", "manifest")
# Recorded only by the files read from the fakes' tree: fakes, and reals cut from the rs dirs.
FAKES_TREE_INPUTS = ("obiwan_dir", "injector")


def expected_inputs(settings: ShardSettings) -> dict[str, tuple[str, str]]:
    """{attribute: (the value every cutouts file must record, as the error shows it)} of the inputs the settings
    name (none: no check). The manifest's SHA-256 is :func:`realfake.manifest.load_manifest`'s, of its bytes now."""
    expected = {
        key: (str(value), str(value))
        for key, value in (
            ("dr5_dir", settings.dr5_dir),
            ("obiwan_dir", settings.obiwan_dir),
            ("injector", settings.injector),
            ("manifest", settings.manifest),
        )
        if value is not None
    }
    if settings.manifest is not None:
        sha256 = load_manifest(settings.manifest).sha256
        expected["manifest_sha256"] = (sha256, f"{sha256} (of {settings.manifest} now)")
    return expected


def _check_inputs(path: Path, kind: str, attributes: dict, expected: dict[str, tuple[str, str]]) -> None:
    """RealfakeError naming the file, the attribute and both values when a cutouts file records other inputs
    than ``expected`` (:func:`expected_inputs`), or none (a file from before the attribute was recorded)."""
    reads_fakes_tree = kind == "fake" or attributes.get("real_source") in ("rsdir", "run")
    for key, (value, shown) in expected.items():
        if key in FAKES_TREE_INPUTS and not reads_fakes_tree:
            continue
        recorded = str(attributes.get(key) or "")
        same = _same_path(recorded, Path(value)) if key in PATH_INPUTS else recorded == value
        if not same:
            raise RealfakeError(
                f"cutouts file {path} was made from {RECORDED_INPUTS[key]} {recorded or '(not recorded)'} "
                f"(attribute {key}), not {shown}: it is left from a run on other inputs; delete it, and its "
                f"cutouts job (or `realfake cutouts`) makes it again"
            )


def _check_layout(path: Path, attributes: dict, reference: dict | None) -> dict:
    """The reference layout (channels, stamp size, bands, first file): the first file's, which every later file
    must share; RealfakeError naming both files when one does not."""
    layout = {"channels": list(attributes["channels"]), "stamp_size": int(attributes["stamp_size"])}
    if reference is None:
        return {**layout, "bands": list(attributes["bands"]), "first_file": str(path)}
    if layout != {key: reference[key] for key in layout}:
        raise RealfakeError(
            f"cutouts file {path} has channels {layout['channels']} and stamp size {layout['stamp_size']}, "
            f"but {reference['first_file']} has {reference['channels']} and {reference['stamp_size']}"
        )
    return reference


def _file_index(
    path: Path, kind: str, attributes: dict, count: int, number: int, settings: ShardSettings, codes: dict[str, int]
) -> pd.DataFrame:
    """The index rows of cutouts file number ``number``: (source, row, label, brick, matching values)."""
    catalog = read_cutouts_catalog(path) if count else pd.DataFrame()
    missing = [name for name in settings.match if count and name not in catalog.columns]
    if missing:
        raise RealfakeError(f"cutouts file {path} has no catalog column {missing[0]!r} to match on")
    piece = pd.DataFrame(
        {
            "source": np.full(count, number, dtype=np.int32),
            "row": np.arange(count, dtype=np.int32),
            "label": np.full(count, LABELS[kind], dtype=np.int8),
            "brick": _brick_numbers(_brick_names(catalog, attributes, path, count), codes),
        }
    )
    for name in settings.match:
        piece[name] = matching_values(catalog, name, path) if count else np.zeros(0)
    return piece


def index_cutouts(settings: ShardSettings, bricks: list[str] | None) -> tuple[list[Source], pd.DataFrame, dict]:
    """Every stamp of every input file: (source, row, label, brick, matching values). Catalogs only, no stamps.

    Returns the input files (real then fake, each directory's in path order), the index (one row per stamp,
    each file's stamps together in file order; ``brick`` numbers sorting as the brick names do) and the
    reference layout (``channels``, ``stamp_size``, ``bands``, ``first_file``, ``real_source``).
    """
    sources, pieces, reference, real_sources = [], [], None, {}
    expected = expected_inputs(settings)
    brick_codes: dict[str, int] = {}  # brick name -> its number, in the order first met
    for kind, directory in (("real", settings.real_dir), ("fake", settings.sim_dir)):
        for path in _cutouts_files(directory, kind, bricks):
            attributes, count, digest = _describe(path)
            _check_inputs(path, kind, attributes, expected)
            reference = _check_layout(path, attributes, reference)
            pieces.append(_file_index(path, kind, attributes, count, len(sources), settings, brick_codes))
            if kind == "real":
                real_sources.setdefault(str(attributes.get("real_source", "dr5")), path)
            sources.append(Source(path, kind, count, digest))
    if not sources:
        raise RealfakeError(f"no cutouts files in {settings.real_dir} or {settings.sim_dir}")
    if len(real_sources) > 1:
        (first, first_path), (second, second_path) = list(real_sources.items())[:2]
        raise RealfakeError(
            f"real cutouts files were cut from different images: {first_path} from {first}, {second_path} from "
            f"{second} (cutouts.real_source); make every brick's real cutouts with one real source"
        )
    reference["real_source"] = next(iter(real_sources), "dr5")
    index = pd.concat(pieces, ignore_index=True)
    index["brick"] = _name_order(brick_codes)[index["brick"].to_numpy()]
    for kind, label in LABELS.items():
        if not (index["label"] == label).any():
            directory = settings.real_dir if kind == "real" else settings.sim_dir
            raise RealfakeError(f"no {kind} examples: every cutouts file under {directory} is empty")
    return sources, index, reference


def _name_order(codes: dict[str, int]) -> np.ndarray:
    """For each brick number of ``codes`` (numbered in the order first met), its rank among the brick names:
    renumbered so, a brick's number sorts as its name does."""
    names = np.array(list(codes), dtype=object)
    rank = np.empty(len(names), dtype=np.int32)
    rank[np.argsort(names.astype(str), kind="stable")] = np.arange(len(names), dtype=np.int32)
    return rank


def _brick_numbers(names: np.ndarray, codes: dict[str, int]) -> np.ndarray:
    """Each stamp's brick as a number (4 bytes an example in the index, where a name is a Python string of
    about 60): ``codes`` maps each name to its number and grows with new names. One file's stamps are from
    one brick or a few, so the names are looked up once each."""
    if not len(names):
        return np.zeros(0, dtype=np.int32)
    unique, inverse = np.unique(names.astype(str), return_inverse=True)
    numbers = np.array([codes.setdefault(str(name), len(codes)) for name in unique], dtype=np.int32)
    return numbers[inverse.reshape(-1)]


def _brick_names(catalog: pd.DataFrame, attributes: dict, path: Path, count: int) -> np.ndarray:
    """The brick of each stamp of a cutouts file: its catalog's ``brickname``, else the file's attribute or name."""
    if count and "brickname" in catalog.columns:
        return catalog["brickname"].to_numpy(dtype=object)
    return np.full(count, str(attributes.get("brickname", Path(path).stem)), dtype=object)
