"""Progress lines: one way for every stage to say what it is doing.

Each line goes to stderr (where Snakemake's ``> {log} 2>&1`` and SLURM's job
output collect it), starts with the stage's name, and is flushed at once, so a
long job's log shows where it is while it runs.
"""

from __future__ import annotations

import sys
from typing import TextIO


def say(stage: str, message: str, stream: TextIO | None = None) -> None:
    """Print ``<stage>: <message>`` to ``stream`` (default: stderr, looked up now) and flush it."""
    print(f"{stage}: {message}", file=stream or sys.stderr, flush=True)
