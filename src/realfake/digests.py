"""Content digests: SHA-256 of arrays, fed without copying them, and of files.

The cutouts files' ``content_sha256`` (:func:`realfake.formats.cutouts.content_digest`)
and the shard set's identity (:func:`realfake.formats.manifest.shard_set_identity`) are
built from these, so the two stages hash arrays the same way, and so is a
model's identity (:func:`realfake.formats.model.model_digest`, of its weights).
"""

from __future__ import annotations

import numpy as np


def digest_array(digest, array: np.ndarray) -> None:
    """Feed a C-contiguous array's bytes to ``digest`` (a hashlib object) without copying them;
    nothing for an empty array."""
    if array.size:
        digest.update(memoryview(array.reshape(-1)).cast("B"))
