"""Reading the JSON files the stages write (metrics.json, history.json, manifest.json), with one error wording."""

from __future__ import annotations

import json
from pathlib import Path

from realfake.errors import RealfakeError


def read_json(path: Path, missing: str) -> object:
    """The JSON value in ``path``; RealfakeError "<path> is missing <missing>" when there is no such file, and
    "<path>: not valid JSON (...)" when it does not parse. The caller checks the value's form."""
    path = Path(path)
    if not path.is_file():
        raise RealfakeError(f"{path} is missing {missing}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise RealfakeError(f"{path}: not valid JSON ({error})") from None
