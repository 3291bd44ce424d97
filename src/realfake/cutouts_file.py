"""The per-brick cutouts file (HDF5): writing it atomically, reading it back, deciding whether to trust it.

One file per brick and kind (``results/cutouts/{kind}/<AAA>/<brick>.h5`` in
the workflow) holds:

- ``stamps``: float32 (N, S, S, C), channels-last; S = stamp size (64);
  channels = the bands then their inverse variances (``g, r, z, ivar_g,
  ivar_r, ivar_z`` for grz), nanomaggies per pixel and 1/nanomaggy^2; rows = y,
  columns = x; inverse variance 0 = no data. Contiguous, uncompressed: noise
  does not compress, and downstream reads whole stamps.
- ``catalog/<column>``: one 1-D dataset per column, N rows, one per stamp in
  stamp order (see :data:`realfake.cutouts.CATALOG_DESCRIPTION`; each
  dataset's ``description`` attribute says what it holds); the group's
  ``columns`` attribute lists them in order; text columns are variable-length
  UTF-8 (read them with ``.asstr()[()]``, or all at once with
  :func:`read_cutouts_catalog`).
- attributes (see :func:`realfake.cutouts.make_cutouts`): what was made and
  from what, the counts ``sources_read``, ``sources_selected``,
  ``sources_written``, ``dropped_off_image``, ``dropped_no_coverage``, and
  ``content_sha256``, the file's content identity (:func:`content_digest`).

The content identity is what later stages tie their state to: the shard set
records the identity of every cutouts file it was made from
(:mod:`realfake.shards`), so a changed stamp or catalog value gives another
shard set, and a model trained on the old one is never reused for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from realfake.atomic import atomic_output

COUNT_ATTRIBUTES = ("sources_read", "sources_selected", "sources_written", "dropped_off_image", "dropped_no_coverage")
TEXT = h5py.string_dtype("utf-8")
CONTENT_DIGEST_ATTRIBUTE = "content_sha256"
DIGEST_BLOCK = 256  # stamps hashed at once when a digest is computed from a file (25 MB for 64 x 64 x 6)


def digest_array(digest, array: np.ndarray) -> None:
    """Feed a C-contiguous array's bytes to ``digest`` without copying them (nothing for an empty array)."""
    if array.size:
        digest.update(memoryview(array.reshape(-1)).cast("B"))


def _digest_catalog(digest, catalog: Mapping[str, object]) -> None:
    """Feed catalog columns, in order, to ``digest`` in a form that survives the HDF5 round trip.

    Numbers are hashed as little-endian int64 or float64 whatever their stored
    width, booleans as uint8, text as UTF-8 (each value prefixed by its length).
    """
    for name, values in catalog.items():
        array = np.asarray(values)
        digest.update(f"column {name} {len(array)}\n".encode())
        if array.dtype.kind == "b":
            digest.update(array.astype("u1").tobytes())
        elif array.dtype.kind in "iu":
            digest.update(array.astype("<i8").tobytes())
        elif array.dtype.kind == "f":
            digest.update(array.astype("<f8").tobytes())
        else:
            for value in array.tolist():
                text = (value.decode() if isinstance(value, bytes) else str(value)).encode()
                digest.update(len(text).to_bytes(8, "little") + text)


def content_digest(stamps: np.ndarray, catalog: pd.DataFrame) -> str:
    """SHA-256 (hex) of a cutouts file's content: the stamps' shape and float32 bytes, then the catalog.

    The same value whether computed from the arrays before writing or from the
    file afterwards (:func:`file_content_digest`); about 30 ms for a brick's
    600 stamps of 64 x 64 x 6.
    """
    digest = hashlib.sha256()
    stamps = np.ascontiguousarray(stamps, dtype="<f4")
    digest.update(f"stamps {stamps.shape}\n".encode())
    digest_array(digest, stamps)
    _digest_catalog(digest, {name: catalog[name].to_numpy() for name in catalog.columns})
    return digest.hexdigest()


def file_content_digest(path: Path) -> str:
    """The content identity of a cutouts file: its ``content_sha256`` attribute, or, for a file
    written before the attribute existed, :func:`content_digest` computed from the file (stamps
    read in blocks, so memory stays bounded)."""
    with h5py.File(path, "r") as cutouts:
        recorded = cutouts.attrs.get(CONTENT_DIGEST_ATTRIBUTE)
        if recorded is not None:
            return read_attribute_text(recorded)
        stamps = cutouts["stamps"]
        digest = hashlib.sha256()
        digest.update(f"stamps {tuple(stamps.shape)}\n".encode())
        for start in range(0, stamps.shape[0], DIGEST_BLOCK):
            block = np.ascontiguousarray(stamps[start : start + DIGEST_BLOCK], dtype="<f4")
            digest_array(digest, block)
    _digest_catalog(digest, {name: values.to_numpy() for name, values in read_cutouts_catalog(path).items()})
    return digest.hexdigest()


def _attribute_value(value: object) -> object:
    """An attribute value h5py stores faithfully: text sequences become UTF-8 string arrays."""
    if isinstance(value, (list, tuple)):
        if all(isinstance(item, str) for item in value):
            return np.array(value, dtype=TEXT)
        return np.asarray(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write_cutouts_file(
    path: Path,
    stamps: np.ndarray,
    catalog: pd.DataFrame,
    attributes: Mapping[str, object],
    column_descriptions: Mapping[str, str] | None = None,
) -> None:
    """Write ``stamps`` (float32 (N, S, S, C)), ``catalog`` (N rows) and ``attributes`` to ``path``.

    ``column_descriptions`` become each catalog dataset's ``description`` attribute;
    the ``content_sha256`` attribute (:func:`content_digest`) is added here.

    Written to a temporary name in the same directory and renamed when
    complete, so a crash never leaves a file under ``path``.
    """
    if len(catalog) != len(stamps):
        raise ValueError(f"{len(stamps)} stamps but {len(catalog)} catalog rows for {path}")
    with atomic_output(Path(path)) as temporary:
        with h5py.File(temporary, "w") as output:
            output.create_dataset("stamps", data=np.ascontiguousarray(stamps, dtype=np.float32))
            group = output.create_group("catalog")
            group.attrs["columns"] = np.array(list(catalog.columns), dtype=TEXT)  # HDF5 lists members by name
            for name in catalog.columns:
                values = catalog[name]
                if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
                    group.create_dataset(name, data=values.to_numpy())
                else:
                    text = np.array([str(value) for value in values], dtype=object)
                    group.create_dataset(name, data=text, dtype=TEXT)
                if column_descriptions and name in column_descriptions:
                    group[name].attrs["description"] = column_descriptions[name]
            for key, value in attributes.items():
                output.attrs[key] = _attribute_value(value)
            output.attrs[CONTENT_DIGEST_ATTRIBUTE] = content_digest(stamps, catalog)


def read_cutouts_catalog(path: Path) -> pd.DataFrame:
    """The ``catalog`` group of a cutouts file as a DataFrame (text columns as str)."""
    with h5py.File(path, "r") as cutouts:
        group = cutouts["catalog"]
        columns = {}
        for name in read_attribute_text(group.attrs["columns"]):
            dataset = group[name]
            columns[name] = dataset.asstr()[()] if h5py.check_string_dtype(dataset.dtype) else dataset[()]
    return pd.DataFrame(columns)


def read_attribute_text(value: object) -> object:
    """An attribute as written: bytes become str, string arrays lists of str."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
        return [item.decode() if isinstance(item, bytes) else str(item) for item in value.tolist()]
    return value


def cutouts_file_is_complete(path: Path, expected: Mapping[str, object], catalog_columns: list[str]) -> bool:
    """Whether ``path`` is a finished cutouts file made with the ``expected`` attribute values.

    It must open, hold a float32 ``stamps`` of shape (N, S, S, C) with N =
    ``sources_written`` and C = the number of channel names, every column of
    ``catalog_columns`` with N rows, and counts that add up
    (selected = written + dropped, selected <= read). Never raises: anything
    unreadable is incomplete.
    """
    try:
        with h5py.File(path, "r") as cutouts:
            attributes = {key: read_attribute_text(value) for key, value in cutouts.attrs.items()}
            for key, value in expected.items():
                wanted = list(value) if isinstance(value, (list, tuple)) else value
                found = attributes.get(key)
                if found is None or (list(found) if isinstance(found, (list, np.ndarray)) else found) != wanted:
                    return False
            counts = {key: int(attributes[key]) for key in COUNT_ATTRIBUTES}
            written = counts["sources_written"]
            dropped = counts["dropped_off_image"] + counts["dropped_no_coverage"]
            if counts["sources_selected"] != written + dropped or counts["sources_selected"] > counts["sources_read"]:
                return False
            stamps = cutouts["stamps"]
            size = int(attributes["stamp_size"])
            if stamps.dtype != np.float32 or stamps.shape != (written, size, size, len(attributes["channels"])):
                return False
            catalog = cutouts["catalog"]
            return all(name in catalog and catalog[name].shape == (written,) for name in catalog_columns)
    except (OSError, KeyError, ValueError, TypeError):
        return False
