"""Opening a shard set (``docs/shards_format.md``) and checking it against its manifest.

Only the ``.npy`` headers are read here (memory-mapped): no pixel data is
loaded. Labels (int32, 4 bytes per example) are read to check they are 0 or 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realfake.errors import RealfakeError

MANIFEST_NAME = "manifest.json"
SPLITS = ("train", "validation", "test")
# How a stamp with NaN or infinite pixels is named in errors (training and evaluation refuse them).
NON_FINITE_INPUT = "non-finite pixels"


@dataclass(frozen=True)
class Shard:
    """One shard: stamps ``x`` float32 (n, S, S, C) and labels ``y`` int32 (n,)."""

    x: Path
    y: Path
    examples: int


@dataclass(frozen=True)
class ShardSet:
    """A checked shard set: the manifest and, per split (train, validation, test), the shards in order."""

    directory: Path
    manifest: dict
    identity: str
    channel_names: tuple[str, ...]
    stamp_size: int
    train: tuple[Shard, ...]
    validation: tuple[Shard, ...]
    test: tuple[Shard, ...]

    @property
    def stamp_shape(self) -> tuple[int, int, int]:
        """(S, S, C) of one example."""
        return (self.stamp_size, self.stamp_size, len(self.channel_names))

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST_NAME

    def examples(self, split: str) -> int:
        return sum(shard.examples for shard in getattr(self, split))


def open_shard_set(directory: Path) -> ShardSet:
    """Read ``directory/manifest.json`` and check every shard it lists.

    Raises RealfakeError, naming the directory, file or manifest key, when the
    directory is missing or empty, the manifest is missing or malformed, a shard
    file is missing, a shard's shape or dtype disagrees with the manifest, a
    label is not 0 or 1, or the training split is empty.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise RealfakeError(f"shard directory {directory} does not exist")
    if not any(directory.iterdir()):
        raise RealfakeError(f"shard directory {directory} is empty")
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        raise RealfakeError(f"{manifest_path} is missing: the shard set is incomplete (the manifest is written last)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as error:
        raise RealfakeError(f"{manifest_path}: not valid JSON ({error})") from None
    identity = manifest_identity(manifest, manifest_path)
    channel_names = tuple(_manifest_value(manifest, manifest_path, "channel_names"))
    stamp_size = int(_manifest_value(manifest, manifest_path, "stamp_size"))
    if not channel_names:
        raise RealfakeError(f"{manifest_path}: channel_names is empty")
    shape = (stamp_size, stamp_size, len(channel_names))
    splits = {}
    for split in SPLITS:
        entries = _manifest_value(manifest, manifest_path, "splits", split, "shards")
        splits[split] = tuple(
            _checked_shard(directory, manifest_path, split, index, entry, shape) for index, entry in enumerate(entries)
        )
    shard_set = ShardSet(
        directory, manifest, identity, channel_names, stamp_size, splits["train"], splits["validation"], splits["test"]
    )
    for split in SPLITS:
        listed = _manifest_value(manifest, manifest_path, "splits", split, "examples")
        if int(listed) != shard_set.examples(split):
            raise RealfakeError(
                f"{manifest_path}: splits.{split}.examples is {listed} but its shards hold {shard_set.examples(split)}"
            )
    if shard_set.examples("train") == 0:
        raise RealfakeError(f"{manifest_path}: the training split has no examples")
    return shard_set


def manifest_identity(manifest: dict, manifest_path: Path) -> str:
    """The shard set's ``identity`` (:func:`realfake.shards.shard_set_identity`); RealfakeError when absent."""
    identity = manifest.get("identity") if isinstance(manifest, dict) else None
    if not isinstance(identity, str) or not identity:
        raise RealfakeError(
            f"{manifest_path}: missing key identity (the shard set was made by an older realfake); "
            f"make it again with `realfake shards`"
        )
    return identity


def short_identity(identity: str | None) -> str:
    """The first 12 hex digits of an identity, for messages and folder names ("unknown" for None)."""
    return identity[:12] if identity else "unknown"


def _manifest_value(manifest: dict, manifest_path: Path, *keys: str):
    value = manifest
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            raise RealfakeError(f"{manifest_path}: missing key {'.'.join(keys[: depth + 1])}")
        value = value[key]
    return value


def _checked_shard(
    directory: Path, manifest_path: Path, split: str, index: int, entry: dict, shape: tuple[int, int, int]
) -> Shard:
    key = f"splits.{split}.shards[{index}]"
    try:
        shard = Shard(directory / entry["x"], directory / entry["y"], int(entry["examples"]))
    except (KeyError, TypeError, ValueError):
        raise RealfakeError(f"{manifest_path}: {key} needs 'x', 'y' and 'examples'") from None
    for path in (shard.x, shard.y):
        if not path.is_file():
            raise RealfakeError(f"{path} is missing (listed in {manifest_path} as {key})")
    stamps = _open_array(shard.x)
    labels = _open_array(shard.y)
    expected_stamps = (shard.examples, *shape)
    if stamps.shape != expected_stamps or stamps.dtype != np.float32:
        raise RealfakeError(
            f"{shard.x}: shape {stamps.shape} {stamps.dtype} disagrees with {manifest_path} "
            f"(expected {expected_stamps} float32 from {key}.examples, stamp_size and channel_names)"
        )
    if labels.shape != (shard.examples,) or labels.dtype != np.int32:
        raise RealfakeError(
            f"{shard.y}: shape {labels.shape} {labels.dtype} disagrees with {manifest_path} "
            f"(expected ({shard.examples},) int32)"
        )
    if labels.size and not np.isin(np.asarray(labels), (0, 1)).all():
        raise RealfakeError(f"{shard.y}: labels must be 0 (real) or 1 (fake)")
    return shard


def _open_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r")
    except (ValueError, OSError) as error:
        raise RealfakeError(f"{path}: not a readable .npy file ({error})") from None
