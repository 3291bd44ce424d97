"""Write a measuring script's table into its page of docs/: the block between two markers.

A page of ``docs/results/`` (or another page of ``docs/``) holds each measured table between

    <!-- begin: controls.py:verdicts -->
    | mismatch | AUC (95% CI) | ... |
    <!-- end: controls.py:verdicts -->

The block's name is ``<script>:<table>``: the script in ``scripts/`` that prints the table, and which of its
tables it is. A script run with ``--results-page`` replaces its blocks with what it has just printed, so a figure in
the docs is what the script prints now. Everything outside the blocks is kept byte for byte; the page is written to
a temporary file beside it and renamed over it, so a reader (or a second writer) never sees half a page.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
DOCS = REPOSITORY / "docs"
RESULTS = DOCS / "results"

# <!-- begin: NAME --> with NAME = script:table, e.g. controls.py:verdicts.
BEGIN = re.compile(r"<!-- begin: (?P<name>[\w.-]+:[\w.-]+) -->")


def markers(name: str) -> tuple[str, str]:
    """The begin and end markers of the block ``name``."""
    return f"<!-- begin: {name} -->", f"<!-- end: {name} -->"


def block_names(text: str) -> list[str]:
    """The names of the blocks in a page's ``text``, in order."""
    return [match.group("name") for match in BEGIN.finditer(text)]


def block_content(text: str, name: str) -> str:
    """What the block ``name`` of ``text`` holds now, without the line breaks next to its markers."""
    start, stop = _span(text, name)
    return text[start:stop].strip("\r\n")


def replace_block(text: str, name: str, markdown: str) -> str:
    """``text`` with the block ``name`` holding ``markdown`` (leading and trailing newlines dropped), one line after
    the begin marker and one before the end marker; nothing else changes. ValueError when the block is not there
    exactly once."""
    start, stop = _span(text, name)
    newline = "\r\n" if "\r\n" in text else "\n"
    body = markdown.strip("\r\n").replace("\r\n", "\n").replace("\n", newline)
    return text[:start] + newline + body + newline + text[stop:]


def check_blocks(page: Path, names) -> None:
    """ValueError, naming the page, unless ``page`` holds each block of ``names`` exactly once: for a script to
    call before hours of measurement whose table would have nowhere to go."""
    text = Path(page).read_bytes().decode("utf-8")
    for name in names:
        try:
            _span(text, name)
        except ValueError as error:
            raise ValueError(f"{page}: {error}") from None


def write_blocks(page: Path, blocks: dict[str, str]) -> None:
    """Replace each block of ``page`` named in ``blocks`` with its Markdown, through a temporary file renamed over
    the page. The page must exist and hold every block exactly once; otherwise it is left as it was."""
    page = Path(page)
    text = page.read_bytes().decode("utf-8")
    for name, markdown in blocks.items():
        try:
            text = replace_block(text, name, markdown)
        except ValueError as error:
            raise ValueError(f"{page}: {error}") from None
    temporary = page.with_name(f".{page.name}.tmp-{os.getpid()}")
    try:
        temporary.write_bytes(text.encode("utf-8"))
        shutil.copymode(page, temporary)
        os.replace(temporary, page)
    finally:
        temporary.unlink(missing_ok=True)
    print(f"wrote {', '.join(blocks)} into {page}", file=sys.stderr)


def _span(text: str, name: str) -> tuple[int, int]:
    """Where the block ``name`` lies in ``text``: from the end of its begin marker to the start of its end marker."""
    begin, end = markers(name)
    for marker in (begin, end):
        count = text.count(marker)
        if count != 1:
            raise ValueError(f"the marker {marker} is there {count} times, not once")
    start, stop = text.index(begin) + len(begin), text.index(end)
    if stop < start:
        raise ValueError(f"the marker {end} comes before {begin}")
    return start, stop
