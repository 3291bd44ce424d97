"""The shards stage's settings: :class:`ShardSettings`, with the choices each setting allows."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from realfake.conventions import INJECTORS
from realfake.errors import RealfakeError
from realfake.formats.cutouts import TEXT_CATALOG_COLUMNS
from realfake.settings import check_settings, flag_of, names_text, option_of, parse_names, setting, spaced

BALANCE_CHOICES = ("subsample", "none")
# example: each example goes to a split on its own; brick: whole bricks do (no sky in two splits).
SPLIT_CHOICES = ("example", "brick")
DTYPE_CHOICES = ("float32", "float16")


@dataclass(frozen=True)
class ShardSettings:
    """How to build a shard set from the per-brick cutouts files (``docs/shards_format.md``)."""

    real_dir: Path = setting(help="directory of the real cutouts files (<AAA>/<brick>.h5)", flag="--real")
    sim_dir: Path = setting(help="directory of the fake cutouts files", flag="--sim")
    out: Path = setting(help="output directory (replaced when complete)")
    seed: int = setting(1, help="random seed of the balancing, the split and the shuffle", minimum=0)
    test_fraction: float = setting(
        0.2, help="share of the examples in the test split", exclusive_minimum=0, exclusive_maximum=1
    )
    validation_fraction: float = setting(
        0.1, help="share of the non-test examples set aside for validation", minimum=0, exclusive_maximum=1
    )
    shard_size: int = setting(512, help="examples per shard", minimum=1)
    balance: str = setting(
        "subsample",
        help="class balance: subsample the larger class (within each matching bin), or none (keep every example)",
        choices=BALANCE_CHOICES,
    )
    match: tuple[str, ...] = setting(
        ("measured_mag_dered_g",),
        help="numeric catalog columns to match the classes in, comma-separated, or none (needs --balance subsample)",
        parse=parse_names,
        text=names_text,
    )
    match_bin_width: float = setting(0.25, help="bin width of the matching, in the columns' units", exclusive_minimum=0)
    split: str = setting(
        "brick",
        help="brick: whole bricks to one split, so no sky is in two; example: each example on its own",
        choices=SPLIT_CHOICES,
    )
    folds: int = setting(
        1,
        help="cross-fitting by brick: K >= 2 cuts the bricks into K folds of near-equal size for K models, each "
        "trained on the other folds and testing its own, so every example is tested once (needs --split brick; "
        "--test-fraction is then not used, --validation-fraction is each fold's share set aside for validation); "
        "1: one train/validation/test split",
        minimum=1,
    )
    dtype: str = setting(
        "float32",
        help="how the stamps are stored: float32, or float16 (half the bytes, each channel divided by a scale the "
        "manifest records, realfake.formats.manifest.STORAGE_SCALES, so that inverse variances do not overflow; "
        "every reader gets float32 in physical units)",
        choices=DTYPE_CHOICES,
    )
    bricks_file: Path | None = setting(
        None, help="use only these bricks' files (text file, one brick per line)", flag="--bricks"
    )
    dr5_dir: Path | None = setting(
        None, help="refuse cutouts files made from another DR5 tree than this one (none: no check)"
    )
    obiwan_dir: Path | None = setting(
        None, help="refuse fake cutouts files made from another obiwan tree than this one (none: no check)"
    )
    injector: str | None = setting(
        None,
        help="refuse fake cutouts files of a fakes' tree made by another injection code than this one (none: no check)",
        choices=INJECTORS,
    )
    manifest: Path | None = setting(
        None,
        help="refuse cutouts files cut through another injection run manifest than this one, or through another "
        "version of it (its path and the SHA-256 of its bytes; none: no check)",
    )

    def __post_init__(self) -> None:
        check_settings(self, describe=spaced)
        if self.match and self.balance == "none":
            raise RealfakeError("matching subsamples within bins, so it needs balance 'subsample' (or no --match)")
        text = [name for name in self.match if name in TEXT_CATALOG_COLUMNS]
        if text:
            raise RealfakeError(
                f"match column {text[0]!r} of the cutouts catalogs holds text; matching needs a numeric column"
            )
        if self.folds > 1 and self.split != "brick":
            raise RealfakeError(
                f"--folds {self.folds} needs --split brick (shards.split): cross-fitting holds whole bricks out of "
                f"each model, and --split {self.split} does not keep bricks whole"
            )
        trees = [item for item in fields(self) if item.name in TREE_SETTINGS and getattr(self, item.name) is not None]
        if self.manifest is not None and trees:
            raise RealfakeError(
                f"--manifest and {flag_of(trees[0].name, option_of(trees[0]))}: cutouts cut through a manifest record "
                "no tree, so every file would be refused; give the manifest or the trees, not both"
            )


# The settings that name the trees a cutouts file must have been made from; a manifest replaces them.
TREE_SETTINGS = ("dr5_dir", "obiwan_dir", "injector")

# The settings that shape a shard set (and so enter its identity); the rest say where things are. A set of
# K >= 2 folds is shaped by FOLD_DEFINING_SETTINGS instead: folds in, test_fraction (not used) out; a set of one
# fold records no folds, so its identity is what it was before folds existed.
DEFINING_SETTINGS = (
    "seed", "test_fraction", "validation_fraction", "shard_size", "balance", "match", "match_bin_width", "split",
    "dtype",
)  # fmt: skip
FOLD_DEFINING_SETTINGS = tuple(name for name in DEFINING_SETTINGS if name != "test_fraction") + ("folds",)


def defining_settings(settings: ShardSettings) -> tuple[str, ...]:
    """The settings that enter the identity of the shard set ``settings`` make (see DEFINING_SETTINGS)."""
    return DEFINING_SETTINGS if settings.folds == 1 else FOLD_DEFINING_SETTINGS
