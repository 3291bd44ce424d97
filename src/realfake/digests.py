"""Content digests: SHA-256 of arrays, fed without copying them, and of files.

The cutouts files' ``content_sha256`` (:func:`realfake.cutouts.file.content_digest`)
and the shard set's identity (:func:`realfake.shardset.shard_set_identity`) are
built from these, so the two stages hash arrays the same way. A model file is
identified by :func:`file_sha256` in every predictions file made with it.
"""

from __future__ import annotations

import hashlib

import numpy as np


def digest_array(digest, array: np.ndarray) -> None:
    """Feed a C-contiguous array's bytes to ``digest`` (a hashlib object) without copying them;
    nothing for an empty array."""
    if array.size:
        digest.update(memoryview(array.reshape(-1)).cast("B"))


def file_sha256(path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes (hex), read in chunks: what identifies a model file by its content, whatever
    the path it is reached by."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
