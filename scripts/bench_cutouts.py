"""Benchmark the cutouts stage on a full-size (3600 x 3600, g, r, z) mock brick.

Prints, for each kind, the time to make the brick's cutouts divided by the
time just to read the FITS images it needs (six for real: image and invvar in
g, r, z; six per rs dir for sim), all measured in this run on warm files (the
best of --repeat runs each), and the examples written per second per core
(one process, one core). "Just reading" is measured two ways: astropy
decompressing each file's HDU 1 (the floor for any reader), and
``legacy.read_coadd`` (the project's reader, which also stacks the bands and
applies the no-coverage rules). The original obiwan code managed about 0.17
examples per second per core.

    python scripts/bench_cutouts.py [--workdir /tmp/realfake-bench] [--repeat 3]

The mock brick is rendered once (about a minute or two) into
``<workdir>/mock-3600`` and reused by later runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from astropy.io import fits

from realfake import paths
from realfake.cutouts import CutoutSettings, run_cutouts
from realfake.mock.layout import mock_brick_names
from realfake.mock.settings import MockSettings
from realfake.mock.survey import run_mock_survey
from realfake.survey import legacy, obiwan

BRICK_SIZE = 3600
ORIGINAL_EXAMPLES_PER_SECOND_PER_CORE = 0.17


def ensure_mock(workdir: Path) -> Path:
    """The one-brick full-size mock survey under ``workdir``, rendered if it is not there yet."""
    root = workdir / f"mock-{BRICK_SIZE}"
    done = root / "bench-complete"
    if not done.is_file():
        print(f"rendering a {BRICK_SIZE} x {BRICK_SIZE} mock brick into {root} (once; about a minute or two)")
        run_mock_survey(MockSettings(out=root, bricks=1, size=BRICK_SIZE))
        done.write_text("rendered\n")
    return root


def decompress_images(paths: list[Path]) -> float:
    """Seconds to read (decompress) HDU 1 of each file: the floor any cutter must pay."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in paths:
            with fits.open(path, memmap=False) as hdus:
                hdus[1].data.sum()  # force the decompression
    return time.perf_counter() - start


def read_coadds(coadd_dirs: list[Path], brick: str, bands: tuple[str, ...]) -> float:
    """Seconds for legacy.read_coadd to read each coadd dir (one at a time, as the cutter does)."""
    start = time.perf_counter()
    for coadd_dir in coadd_dirs:
        legacy.read_coadd(coadd_dir, brick, bands)
    return time.perf_counter() - start


def coadd_dirs_of(settings: CutoutSettings, brick: str) -> list[Path]:
    if settings.kind == "real":
        return [settings.dr5_dir / "coadd" / brick[:3] / brick]
    return [rsdir.coadd_dir for rsdir in obiwan.find_rsdirs(settings.obiwan_dir, brick)]


def image_paths(coadd_dirs: list[Path], brick: str, bands: tuple[str, ...]) -> list[Path]:
    return [
        Path(coadd_dir) / paths.coadd_name(brick, kind, band)
        for coadd_dir in coadd_dirs
        for band in bands
        for kind in paths.COADD_KINDS
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "realfake-bench")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best counts")
    args = parser.parse_args()
    root = ensure_mock(args.workdir)
    brick = mock_brick_names(1)[0]
    out_dir = args.workdir / "cutouts"

    for kind in ("real", "sim"):
        settings = CutoutSettings(kind=kind, dr5_dir=root / "dr5", obiwan_dir=root / "obiwan")
        coadd_dirs = coadd_dirs_of(settings, brick)
        paths = image_paths(coadd_dirs, brick, settings.bands)
        timings: dict[str, list[float]] = {"decompress": [], "read_coadd": [], "cutouts": []}
        decompress_images(paths)  # warm the page cache
        for _ in range(args.repeat):
            timings["decompress"].append(decompress_images(paths))
            timings["read_coadd"].append(read_coadds(coadd_dirs, brick, settings.bands))
            start = time.perf_counter()
            counts = run_cutouts(settings, brick, out_dir / f"{kind}.h5")
            timings["cutouts"].append(time.perf_counter() - start)
        best = {name: min(seconds) for name, seconds in timings.items()}
        rate = counts.sources_written / best["cutouts"]
        print(
            f"{kind}: {counts.summary()}\n"
            f"  cutouts {best['cutouts']:.2f} s; reading its {len(paths)} FITS images: "
            f"astropy decompression {best['decompress']:.2f} s, legacy.read_coadd {best['read_coadd']:.2f} s\n"
            f"  cutout time / image read time = {best['cutouts'] / best['decompress']:.2f} against decompression, "
            f"{best['cutouts'] / best['read_coadd']:.2f} against read_coadd (target <= 1.3)\n"
            f"  {rate:.0f} examples per second per core "
            f"({rate / ORIGINAL_EXAMPLES_PER_SECOND_PER_CORE:.0f} x the original's "
            f"{ORIGINAL_EXAMPLES_PER_SECOND_PER_CORE})"
        )


if __name__ == "__main__":
    main()
