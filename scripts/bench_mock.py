"""Benchmark: time to generate the default mock survey (target: under 60 s on a 2-core machine).

Usage: .venv/bin/python scripts/bench_mock.py [--bricks N] [--size PIX] [--workdir DIR]

Generates the mock serially in one process (the workflow runs one job per
brick, so with Snakemake and N cores the wall time is about this divided by
N). Prints the total, the time per brick, and the share spent writing the
compressed FITS files, measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from unittest import mock as patching

from realfake.mock import files
from realfake.mock.settings import MockSettings
from realfake.mock.survey import run_mock_survey

TARGET_SECONDS = 60.0


def main() -> None:
    defaults = MockSettings(out=Path("."))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bricks", type=int, default=defaults.bricks)
    parser.add_argument("--size", type=int, default=defaults.size)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as workdir:
        settings = MockSettings(out=Path(workdir) / "mock", bricks=args.bricks, size=args.size)
        writing = 0.0
        original = files.write_compressed_image

        def timed_write(*positional, **keywords):
            nonlocal writing
            start = time.perf_counter()
            original(*positional, **keywords)
            writing += time.perf_counter() - start

        start = time.perf_counter()
        with patching.patch("realfake.mock.brick.write_compressed_image", timed_write):
            run_mock_survey(settings)
        total = time.perf_counter() - start
    print(
        f"mock survey: {settings.bricks} bricks of {settings.size}x{settings.size} pixels, g r z, "
        f"{settings.rsdirs} rs dirs x {settings.fakes_per_rsdir} fakes"
    )
    print(
        f"total {total:.1f} s; {total / settings.bricks:.1f} s per brick; "
        f"compressed FITS writing {writing:.1f} s ({writing / total:.0%})"
    )
    print(f"total / target ({TARGET_SECONDS:.0f} s): {total / TARGET_SECONDS:.2f} (at most 1 meets the target)")


if __name__ == "__main__":
    main()
