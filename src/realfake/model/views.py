"""Restricted views of the stamps, for the shortcut audit: where in the stamp is the difference?

Each view hides part of a stamp from the CNN, the same way for both classes.
A view acts on the normalised stamp (:class:`realfake.model.network.InputNormalization`),
where a flux pixel at the training split's median sky is 0 and an
inverse-variance pixel at the stamp's own mean depth is 0, so hiding a pixel
is setting it to 0: "sky at its median, depth as the rest of the stamp".

| view | what the CNN sees |
| --- | --- |
| ``full`` | everything |
| ``image_only`` | the images; inverse variances hidden |
| ``ivar_only`` | the inverse variances; images hidden |
| ``centre_only`` | the pixels within ``CENTRE_RADIUS`` (8) of the stamp centre |
| ``ring_only`` | the pixels beyond ``RING_RADIUS`` (12) of the stamp centre |

A CNN trained on each view (``realfake train --view``) and compared with the
full one says whether the difference lies in the galaxy (centre), the sky or
the processing around it (ring), or the inverse variance
(:mod:`realfake.evaluation.audit`). Distances are from the source's pixel (S/2, S/2),
0-indexed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from realfake.conventions import is_inverse_variance
from realfake.errors import RealfakeError

VIEWS = ("full", "image_only", "ivar_only", "centre_only", "ring_only")
CENTRE_RADIUS = 8  # pixels
RING_RADIUS = 12  # pixels


def check_view(view: str) -> str:
    if view not in VIEWS:
        raise RealfakeError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    return view


def view_mask(view: str, stamp_size: int, channel_names: Sequence[str]) -> np.ndarray:
    """float32 (S, S, C): 1 where ``view`` shows a pixel of a channel, 0 where it hides it."""
    check_view(view)
    channels = len(channel_names)
    mask = np.ones((stamp_size, stamp_size, channels), dtype=np.float32)
    ivar = np.array([is_inverse_variance(name) for name in channel_names])
    if view == "image_only":
        mask[..., ivar] = 0.0
    elif view == "ivar_only":
        mask[..., ~ivar] = 0.0
    elif view in ("centre_only", "ring_only"):
        rows, columns = np.mgrid[0:stamp_size, 0:stamp_size]
        radius = np.hypot(rows - stamp_size // 2, columns - stamp_size // 2)
        shown = radius <= CENTRE_RADIUS if view == "centre_only" else radius > RING_RADIUS
        mask[~shown, :] = 0.0
    return mask
