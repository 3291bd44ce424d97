"""Small per-brick cutouts files (8 x 8 stamps), for the shards tests and the fault catalogue.

Each stamp's channel 0 pixel (0, 0) holds a code naming its label, brick and
row (:func:`code`), so a test can trace every stamp of a shard set back to its
source. Real g magnitudes are brighter on average than the fakes', so the
matching has work to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from realfake.formats.cutouts import write_cutouts_file

SIZE = 8  # small stamps keep the tests fast; the code does not care about 64
CHANNELS = ["g", "r", "z", "ivar_g", "ivar_r", "ivar_z"]
# The first len(counts[kind]) of these get a file.
BRICKS = [f"{1238 + 3 * number}p245" for number in range(12)]


def code(label: int, brick: int, row: int) -> float:
    """A number that identifies a stamp; stored in its channel 0."""
    return float(label * 100_000 + brick * 1_000 + row)


def write_fixture(
    root: Path,
    counts: dict[str, list[int]],
    rng_seed: int = 0,
    channels=CHANNELS,
    trees=("dr5", "obiwan"),
    undetected: int = 0,
) -> None:
    """Cutouts files for each kind and brick; real g magnitudes brighter on average than the fakes'.

    ``mag_dered_g`` is the true magnitude of a fake and ``measured_mag_dered_g`` its re-fit (0.1 mag
    off); a real source's two are its catalog value. The first ``undetected`` fakes of each brick were
    not detected: no measured value. ``trees``: the DR5 and obiwan trees the files record they were made from.
    """
    rng = np.random.default_rng(rng_seed)
    for kind, label in (("real", 0), ("sim", 1)):
        for brick_number, (brick, count) in enumerate(zip(BRICKS, counts[kind], strict=False)):
            stamps = rng.normal(0, 0.01, (count, SIZE, SIZE, len(channels))).astype(np.float32)
            stamps[..., len(channels) // 2 :] = rng.uniform(500, 1500, (count, 1, 1, len(channels) // 2))
            stamps[:, 0, 0, 0] = [code(label, brick_number, row) for row in range(count)]
            magnitudes = rng.normal(22.5 if kind == "real" else 23.0, 0.6, count)
            measured = magnitudes if kind == "real" else magnitudes + rng.normal(0, 0.1, count)
            detected = np.ones(count, dtype=bool)
            if kind == "sim":
                detected[: min(undetected, count)] = False
            catalog = pd.DataFrame(
                {
                    "id": np.arange(count, dtype=np.int64),
                    "brickname": [brick] * count,
                    "rsdir": ["" if kind == "real" else "rs0"] * count,
                    "mag_dered_g": magnitudes,
                    "measured_mag_dered_g": np.where(detected, measured, np.nan),
                    "detected": detected,
                    "type": ["EXP"] * count,
                }
            )
            attributes = {
                "kind": kind, "bands": ["g", "r", "z"], "channels": channels, "stamp_size": SIZE,
                "dr5_dir": trees[0], "obiwan_dir": trees[1] if kind == "sim" else "",
            }  # fmt: skip
            write_cutouts_file(root / kind / brick[:3] / f"{brick}.h5", stamps, catalog, attributes)
