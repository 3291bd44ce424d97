"""Writing the whole mock survey, brick by brick: :func:`run_mock_survey`."""

from __future__ import annotations

import time

from realfake.errors import RealfakeError
from realfake.mock.layout import mock_bricks
from realfake.mock.settings import MockSettings
from realfake.progress import say


def run_mock_survey(
    settings: MockSettings, only_bricks: list[str] | None = None, table_only: bool = False
) -> list[str]:
    """Write the mock survey under ``settings.out``; return the names of the bricks written.

    ``only_bricks`` restricts the work to those bricks' files (the brick table
    is not rewritten); ``table_only`` writes just the brick table and
    ``bricks.txt``. With neither, everything is written.
    """
    from realfake.mock.brick import write_brick, write_brick_table

    bricks = mock_bricks(settings.bricks)
    if only_bricks:
        by_name = {brick.name: brick for brick in bricks}
        unknown = [name for name in only_bricks if name not in by_name]
        if unknown:
            raise RealfakeError(
                f"brick {unknown[0]} is not one of the {settings.bricks} mock bricks ({', '.join(by_name)})"
            )
        bricks = [by_name[name] for name in only_bricks]
    else:
        write_brick_table(settings, bricks)
        if table_only:
            return []
    if table_only:
        raise RealfakeError("--table-only and --brick cannot be combined")
    for index, brick in enumerate(bricks, start=1):
        start = time.perf_counter()
        summary = write_brick(settings, brick)
        say(
            "mock-survey", f"brick {brick.name} ({index}/{len(bricks)}): {summary}, {time.perf_counter() - start:.1f} s"
        )
    return [brick.name for brick in bricks]
