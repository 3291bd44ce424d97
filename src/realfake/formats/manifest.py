"""The shard set's manifest, ``manifest.json``: its typed record, its checks, and the pieces every writer builds
it from (``docs/shards_format.md``).

- :class:`Manifest`: what a shard set holds and how it was made; every writer
  builds one and writes it with :func:`write_manifest`, last;
  :meth:`Manifest.from_json` reads and checks it (for
  :func:`realfake.formats.shardset.open_shard_set`).
- The writers' pieces: :func:`shard_file_names`, :func:`split_records`,
  :func:`label_counts`, :func:`normalization_record`, :func:`storage_record`
  and :func:`shard_set_identity`, used by the shards stage
  (:func:`realfake.shards.build.run_shards`) and by
  :func:`realfake.formats.shardset.write_shard_set`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from realfake import __version__
from realfake.conventions import LABELS, fold_parts, is_inverse_variance
from realfake.digests import digest_array
from realfake.errors import RealfakeError

MANIFEST_NAME = "manifest.json"
# Stamps stored as float16: each channel divided by its scale (a power of two, so exact). Fluxes (nanomaggies)
# keep 1: float16's ~3 significant digits are far below the sky noise, and its largest value (65504 nanomaggies
# in one pixel, a star of about magnitude 10) is clipped there and counted. Inverse variances reach 1e5 to 1e6
# 1/nanomaggy^2 in deep regions, past float16's 65504: stored divided by 2^10, they are exact to 0.05% from
# 0.06 to 6.7e7.
STORAGE_SCALES = {"flux": 1.0, "inverse_variance": 1024.0}
FLOAT16_MAX = float(np.finfo(np.float16).max)
FORMAT_VERSION = 2


@dataclass(frozen=True)
class Manifest:
    """``manifest.json``: what a shard set holds and how it was made (every key: ``docs/shards_format.md``).

    Both writers build one (the shards stage and :func:`realfake.formats.shardset.write_shard_set`) and write it
    with :func:`write_manifest`; :func:`realfake.formats.shardset.open_shard_set` reads and checks it with
    :meth:`from_json`.
    ``splits[split]`` is ``{"examples", "real", "fake", "shards"}`` (:func:`split_records`), for each split of a
    set of one fold; a set cross-fitted in ``folds`` K >= 2 folds has one such record per part instead
    (:func:`realfake.conventions.fold_parts`: ``fold0-train``, ``fold0-validation``, ...) and ``folds`` K (None,
    absent from the file, for one fold);
    ``storage``, ``normalization`` and the stage's records (``matching``, ``split``, ``inputs``,
    ``settings``) are the JSON objects the format describes. The fields from ``seed`` on say how
    the shards stage made the set; a set written from memory has none of them (None here, absent
    from the file).
    """

    identity: str
    channel_names: tuple[str, ...]
    stamp_size: int
    shard_size: int
    splits: dict[str, dict]
    normalization: dict
    storage: dict = field(default_factory=lambda: {"dtype": "float32"})
    bands: tuple[str, ...] | None = None
    available: dict[str, int] | None = None
    format_version: int = FORMAT_VERSION
    labels: dict[str, int] = field(default_factory=lambda: dict(LABELS))
    package_version: str | None = __version__
    folds: int | None = None
    seed: int | None = None
    test_fraction: float | None = None
    validation_fraction: float | None = None
    balance: str | None = None
    matching: dict | None = None
    split: dict | None = None
    real_source: str | None = None
    inputs: dict | None = None
    settings: dict | None = None

    def to_json(self) -> dict:
        """The manifest as JSON-ready values (tuples as lists; a field that is None left out)."""
        record = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None:
                record[item.name] = list(value) if isinstance(value, tuple) else value
        return record

    @classmethod
    def from_json(cls, record: object, manifest_path: Path) -> Manifest:
        """The manifest of a parsed ``manifest.json``, checked: RealfakeError naming ``manifest_path`` and the key
        when it is of another ``format_version`` than :data:`FORMAT_VERSION`, lacks a key every shard set has
        (``identity``, ``channel_names``, ``stamp_size``, ``shard_size``, ``labels``, each split's, or with
        ``folds``, each part's ``shards`` and ``examples``, ``normalization``), has a ``folds`` that is not a whole
        number of at least 2 or an unusable ``storage``. Keys this realfake does not know are ignored."""
        version = record.get("format_version") if isinstance(record, dict) else None
        if version != FORMAT_VERSION:
            raise RealfakeError(
                f"{manifest_path}: format_version {version!r}, but this realfake reads shard sets of format "
                f"{FORMAT_VERSION} only: make the shard set again with this realfake (`realfake shards`)"
            )
        identity = record.get("identity")
        if not isinstance(identity, str) or not identity:
            raise RealfakeError(
                f"{manifest_path}: missing key identity (the shard set was made by an older realfake); "
                f"make it again with `realfake shards`"
            )
        channel_names = tuple(_manifest_value(record, manifest_path, "channel_names"))
        stamp_size = int(_manifest_value(record, manifest_path, "stamp_size"))
        if not channel_names:
            raise RealfakeError(f"{manifest_path}: channel_names is empty")
        storage = record.get("storage") or {"dtype": "float32"}
        _stored_as(storage, channel_names, manifest_path)
        folds = record.get("folds")
        if folds is not None and (isinstance(folds, bool) or not isinstance(folds, int) or folds < 2):
            raise RealfakeError(
                f"{manifest_path}: folds must be a whole number of at least 2 (absent for a set of one split), "
                f"got {folds!r}"
            )
        for part in fold_parts(folds or 1):
            _manifest_value(record, manifest_path, "splits", part, "shards")
            _manifest_value(record, manifest_path, "splits", part, "examples")
        for key in ("shard_size", "labels", "normalization"):
            _manifest_value(record, manifest_path, key)
        known = {item.name for item in fields(cls)}
        values = {key: value for key, value in record.items() if key in known}
        values.update(identity=identity, channel_names=channel_names, stamp_size=stamp_size, storage=storage)
        values["package_version"] = record.get("package_version")  # not this realfake's when unrecorded
        if "bands" in values:
            values["bands"] = tuple(values["bands"])
        return cls(**values)

    @property
    def fold_count(self) -> int:
        """The number of folds: ``folds``, or 1 for a set of one split."""
        return self.folds or 1

    @property
    def parts(self) -> list[str]:
        """The parts the set is stored in, in file order (:func:`realfake.conventions.fold_parts`): the splits
        for one fold."""
        return fold_parts(self.fold_count)

    def stored_as(self) -> tuple[np.dtype, tuple[float, ...] | None]:
        """The stamps' dtype and each channel's scale (stored = value / scale; None: float32 as they are)."""
        return _stored_as(self.storage, self.channel_names, MANIFEST_NAME)


def _manifest_value(manifest: dict, manifest_path: Path, *keys: str):
    value = manifest
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            raise RealfakeError(f"{manifest_path}: missing key {'.'.join(keys[: depth + 1])}")
        value = value[key]
    return value


def _stored_as(
    storage: dict, channel_names: tuple[str, ...], manifest_path: Path | str
) -> tuple[np.dtype, tuple[float, ...] | None]:
    """The stamps' dtype and per-channel scales from the manifest's ``storage``."""
    if storage.get("dtype") == "float32":
        return np.dtype(np.float32), None
    if storage.get("dtype") != "float16":
        raise RealfakeError(f"{manifest_path}: storage.dtype must be float32 or float16, got {storage.get('dtype')!r}")
    scales = storage.get("channel_scales") or {}
    missing = [name for name in channel_names if name not in scales]
    if missing:
        raise RealfakeError(f"{manifest_path}: storage.channel_scales has no scale for channel {missing[0]}")
    return np.dtype(np.float16), tuple(float(scales[name]) for name in channel_names)


# -- the writers' pieces -----------------------------------------------------------------------


def shard_file_names(split: str, count: int, shard_size: int) -> list[dict]:
    """The manifest's shard entries of a split of ``count`` examples: ``{"x", "y", "examples"}`` per shard,
    every shard ``shard_size`` long but the last."""
    shards = []
    for shard in range(math.ceil(count / shard_size)):
        examples = min(shard_size, count - shard * shard_size)
        shards.append({"x": f"x{split}_{shard}.npy", "y": f"y{split}_{shard}.npy", "examples": examples})
    return shards


def label_counts(labels: np.ndarray) -> dict[str, int]:
    """``{"real": n, "fake": n}``: how many of ``labels`` (int, real = 0, fake = 1) are of each class."""
    labels = np.asarray(labels)
    return {kind: int(np.sum(labels == label)) for kind, label in LABELS.items()}


def split_records(labels: Mapping[str, np.ndarray], shard_size: int) -> dict[str, dict]:
    """The manifest's ``splits``, from each split's (or, with folds, each part's) labels in shard order, in the
    order given: ``{"examples", "real", "fake", "shards"}`` each (the shards: :func:`shard_file_names`)."""
    return {
        part: {
            "examples": len(part_labels),
            **label_counts(part_labels),
            "shards": shard_file_names(part, len(part_labels), shard_size),
        }
        for part, part_labels in labels.items()
    }


def _robust_statistics(values: np.ndarray) -> dict[str, float]:
    median = float(np.median(values)) if values.size else 0.0
    mad = float(np.median(np.abs(values - median))) if values.size else 0.0
    return {"median": median, "mad_sigma": 1.4826 * mad}


# normalization.computed_on of a set of folds: every fold's training part (no labels enter the statistics, so
# the model of a fold learns nothing of its test examples' classes from them).
FOLDS_NORMALIZATION_SOURCE = "train parts of all folds"


def normalization_record(
    pixels: np.ndarray,
    channel_names: list[str],
    examples_sampled: int,
    pixels_per_example: int,
    computed_on: str = "train",
) -> dict:
    """The manifest's ``normalization``: per channel the median and robust sigma (1.4826 x MAD) of
    training pixels ``pixels`` (n, C); inverse-variance channels count only pixels > 0. ``computed_on`` says
    which: "train", or :data:`FOLDS_NORMALIZATION_SOURCE` for a set of folds."""
    statistics = {}
    for column, name in enumerate(channel_names):
        values = pixels[:, column].astype(np.float64)
        if is_inverse_variance(name):
            values = values[values > 0]
        statistics[name] = _robust_statistics(values)
    return {
        "computed_on": computed_on,
        "examples_sampled": examples_sampled,
        "pixels_per_example": pixels_per_example,
        "channels": statistics,
    }


def shard_set_identity(definition: dict, placement: dict[str, np.ndarray] | None = None) -> str:
    """SHA-256 (hex) of a shard set's ``definition`` (JSON-ready) and ``placement``.

    ``placement[split]`` (or ``placement[part]``, with folds) is an integer array (n, 2): for each example in
    shard order, the number of its input file and its row there. Both are hashed in
    a canonical form (sorted JSON keys; little-endian int64), so the identity
    is the same on every machine.
    """
    digest = hashlib.sha256(json.dumps(definition, sort_keys=True, separators=(",", ":")).encode())
    for split in sorted(placement or {}):
        array = np.ascontiguousarray(placement[split], dtype="<i8")
        digest.update(f"\n{split} {array.shape}\n".encode())
        digest_array(digest, array)
    return digest.hexdigest()


def storage_record(dtype: str, channel_names: tuple[str, ...]) -> dict:
    """The manifest's ``storage``: the stamps' dtype and, for float16, each channel's scale (stored = value /
    scale)."""
    if dtype == "float32":
        return {"dtype": "float32"}
    scales = {
        name: STORAGE_SCALES["inverse_variance" if is_inverse_variance(name) else "flux"] for name in channel_names
    }
    return {"dtype": dtype, "channel_scales": scales}


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    """Write ``manifest.json`` (sorted keys, indented): the last file of a shard set."""
    path = Path(directory) / MANIFEST_NAME
    path.write_text(json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n")
    return path
