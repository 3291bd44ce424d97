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
- attributes (see :func:`realfake.cutouts.run_cutouts`): what was made and
  from what, the counts ``sources_read``, ``sources_selected``,
  ``sources_written``, ``dropped_off_image``, ``dropped_no_coverage``,
  ``dropped_near_fake``, ``release`` and ``dropped_dup`` (the data release of
  the tractor catalog read, "dr5" ... "dr10", and its DUP rows dropped before
  ``sources_read`` was counted; files written before these existed lack them,
  and nothing requires them), and
  ``content_sha256``, the file's content identity (:func:`content_digest`).

The content identity is what later stages tie their state to: the shard set
records the identity of every cutouts file it was made from
(:mod:`realfake.shards.build`), so a changed stamp or catalog value gives another
shard set, and a model trained on the old one is never reused for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from realfake.atomic import atomic_output
from realfake.digests import digest_array

COUNT_ATTRIBUTES = (
    "sources_read", "sources_selected", "sources_written", "dropped_off_image", "dropped_no_coverage",
    "dropped_near_fake",
)  # fmt: skip
DROP_ATTRIBUTES = COUNT_ATTRIBUTES[3:]
TEXT = h5py.string_dtype("utf-8")
CONTENT_DIGEST_ATTRIBUTE = "content_sha256"
DIGEST_BLOCK = 256  # stamps hashed at once when a digest is computed from a file (25 MB for 64 x 64 x 6)

PIXEL_CONVENTION = (
    "0-indexed pixels with centres at integer coordinates; x = column, y = row of the coadd, "
    "computed from ra, dec through the coadd WCS (origin 0) for real and fake sources alike; "
    "centre = floor(coordinate + 0.5); stamps[n, i, j, c] = coadd[c][centre_y - S/2 + i, centre_x - S/2 + j], "
    "so the source sits at stamp pixel (S/2 + offset_y, S/2 + offset_x), offsets in [-0.5, 0.5)"
)

# A fake's re-fit in its rs dir's tractor catalog is the source nearest to it within this many pixels.
FIT_MATCH_RADIUS = 1.0

CATALOG_DESCRIPTION = {
    "id": "tractor objid (real) or simcat id (fake)",
    "brickname": "DR5 brick name",
    "rsdir": "obiwan rs dir the stamp was cut from: a fake's, or a real source's with real_source rsdir (with "
    "real_source run, the plain run's); empty for real sources cut from DR5",
    "ra": "right ascension, deg",
    "dec": "declination, deg",
    "x": "0-indexed column of the source in the coadd, from ra, dec through its WCS",
    "y": "0-indexed row of the source in the coadd, from ra, dec through its WCS",
    "centre_x": "coadd column of stamp pixel S/2: floor(x + 0.5)",
    "centre_y": "coadd row of stamp pixel S/2: floor(y + 0.5)",
    "offset_x": "x - centre_x, pixels, in [-0.5, 0.5)",
    "offset_y": "y - centre_y, pixels, in [-0.5, 0.5)",
    "flux_{band}": "observed flux (Milky Way extinction included), nanomaggies",
    "mw_transmission_{band}": "Milky Way transmission (0-1)",
    "mag_dered_{band}": "dereddened AB magnitude, 22.5 - 2.5 log10(flux / mw_transmission); NaN if flux <= 0",
    "type": (
        "real: tractor type (PSF, REX, EXP, DEV, and COMP up to DR8 or SER from DR9); fake: from its true profile "
        "(PSF if rhalf = 0, EXP if n = 1, DEV if n = 4, else SER)"
    ),
    "size": (
        "half-light radius, arcsec; real: as the selection defines it (PSF: mean psfsize / 2; DR5-DR8 REX/EXP: "
        "shapeexp_r, DEV: shapedev_r, COMP: fracdev-weighted; DR9+ shape_r); fake: simcat rhalf"
    ),
    "sersic_n": "Sersic index: real EXP/REX 1, DEV 4, SER its sersic, PSF and COMP NaN; fake: simcat n",
    "e1": (
        "ellipticity component 1: real shapeexp_e1 or shapedev_e1 (DR5-DR8; COMP NaN) or shape_e1 (DR9+), PSF 0; "
        "fake: simcat e1"
    ),
    "e2": "ellipticity component 2, as e1",
    "measured": (
        "whether the measured_* columns hold a tractor fit: always for a real source; for a fake, when its rs "
        f"dir's tractor catalog has a source within {FIT_MATCH_RADIUS} pixel of it"
    ),
    "measured_mag_dered_{band}": (
        "dereddened AB magnitude of the tractor fit (real: mag_dered_<b>; fake: of its matched rs dir tractor "
        "source); NaN if not measured"
    ),
    "measured_type": "tractor type of the fit (real: type; fake: its matched source's); empty if not measured",
    "measured_size": "half-light radius of the fit, arcsec, defined as size is for reals; NaN if not measured",
    "detected": "whether legacypipe detected the source: always for a real source; for a fake, measured",
    "distance_to_no_coverage": (
        "pixels (max(|dx|, |dy|)) from the stamp centre to the nearest pixel with inverse variance 0 in any band "
        "or off the image, capped at 64"
    ),
}

# The catalog columns (CATALOG_DESCRIPTION) a cutouts file stores as text; every other one holds numbers or booleans.
# The workflow's planning reads it to refuse matching on text (shards.match) before any job runs.
TEXT_CATALOG_COLUMNS = ("brickname", "rsdir", "type", "measured_type")


def catalog_columns(bands: Sequence[str]) -> list[str]:
    """The catalog columns of a cutouts file, in order, for ``bands``."""
    columns = []
    for name in CATALOG_DESCRIPTION:
        if "{band}" in name:
            columns += [name.format(band=band) for band in bands]
        else:
            columns.append(name)
    return columns


def column_descriptions(bands: Sequence[str]) -> dict[str, str]:
    """``{column: description}`` for every catalog column (stored as each dataset's ``description``)."""
    descriptions = {}
    for name, description in CATALOG_DESCRIPTION.items():
        for band in bands if "{band}" in name else [None]:
            descriptions[name.format(band=band)] = description
    return descriptions


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
            dropped = sum(counts[key] for key in DROP_ATTRIBUTES)
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


def ordered_bands(table: pd.DataFrame) -> tuple[str, ...]:
    """Bands with a ``mag_dered_<b>`` column, in column order."""
    return tuple(column.removeprefix("mag_dered_") for column in table.columns if column.startswith("mag_dered_"))


def measured_view(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``mag_dered_<b>``, ``size`` and ``type`` from the tractor fit wherever there is one.

    Cutouts catalogs carry ``measured`` and ``measured_*`` columns (a real
    source's own values; a fake's fit in its rs dir's tractor catalog). Rows
    with ``measured`` true take the ``measured_*`` values, so both classes are
    compared on legacypipe's measurements and measurement noise cannot tell
    them apart; rows without a fit keep their values. A table without the
    columns is returned as it is.
    """
    if "measured" not in table.columns:
        return table
    measured = table["measured"].to_numpy(dtype=bool)
    view = table.copy()
    for column in table.columns:
        target = column.removeprefix("measured_")
        if column.startswith("measured_") and target in table.columns:
            view[target] = np.where(measured, table[column].to_numpy(), table[target].to_numpy())
    return view
