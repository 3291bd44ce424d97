"""The shards stage's settings: :class:`ShardSettings`, with the choices each setting allows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from realfake.errors import RealfakeError
from realfake.formats.cutouts import TEXT_CATALOG_COLUMNS

BALANCE_CHOICES = ("subsample", "none")
# example: each example goes to a split on its own; brick: whole bricks do (no sky in two splits).
SPLIT_CHOICES = ("example", "brick")
DTYPE_CHOICES = ("float32", "float16")


@dataclass(frozen=True)
class ShardSettings:
    """How to build a shard set from the per-brick cutouts files.

    ``dr5_dir`` and ``obiwan_dir``, when given, are the trees the cutouts must
    have been made from: a cutouts file that records another tree (left by a
    run on other inputs) is refused, naming both.

    ``dtype``: how the stamps are stored, ``float32`` or ``float16`` (half the
    bytes, each channel divided by a scale the manifest records:
    :data:`realfake.formats.shardset.STORAGE_SCALES`); every reader gets float32 in
    physical units either way.
    """

    real_dir: Path
    sim_dir: Path
    out: Path
    seed: int = 1
    test_fraction: float = 0.2
    validation_fraction: float = 0.1
    shard_size: int = 512
    balance: str = "subsample"
    match: tuple[str, ...] = ("measured_mag_dered_g",)
    match_bin_width: float = 0.25
    split: str = "brick"
    dtype: str = "float32"
    bricks_file: Path | None = None
    dr5_dir: Path | None = None
    obiwan_dir: Path | None = None

    def __post_init__(self) -> None:
        for name in ("test_fraction", "validation_fraction", "match_bin_width"):
            if not math.isfinite(getattr(self, name)):
                raise RealfakeError(f"{name.replace('_', ' ')} must be a finite number, got {getattr(self, name)}")
        if not 0 < self.test_fraction < 1:
            raise RealfakeError(f"test fraction must be between 0 and 1, got {self.test_fraction}")
        if not 0 <= self.validation_fraction < 1:
            raise RealfakeError(
                f"validation fraction (of the examples left after the test split) must be at least 0 and below 1, "
                f"got {self.validation_fraction}"
            )
        if self.shard_size < 1:
            raise RealfakeError(f"shard size must be at least 1, got {self.shard_size}")
        if self.balance not in BALANCE_CHOICES:
            raise RealfakeError(f"balance must be one of {', '.join(BALANCE_CHOICES)}, got {self.balance!r}")
        if self.match and self.balance == "none":
            raise RealfakeError("matching subsamples within bins, so it needs balance 'subsample' (or no --match)")
        text = [name for name in self.match if name in TEXT_CATALOG_COLUMNS]
        if text:
            raise RealfakeError(
                f"match column {text[0]!r} of the cutouts catalogs holds text; matching needs a numeric column"
            )
        if self.match_bin_width <= 0:
            raise RealfakeError(f"match bin width must be positive, got {self.match_bin_width}")
        if self.split not in SPLIT_CHOICES:
            raise RealfakeError(f"split must be one of {', '.join(SPLIT_CHOICES)}, got {self.split!r}")
        if self.dtype not in DTYPE_CHOICES:
            raise RealfakeError(f"dtype must be one of {', '.join(DTYPE_CHOICES)}, got {self.dtype!r}")


# The settings that shape a shard set (and so enter its identity); the rest say where things are.
DEFINING_SETTINGS = (
    "seed", "test_fraction", "validation_fraction", "shard_size", "balance", "match", "match_bin_width", "split",
    "dtype",
)  # fmt: skip
