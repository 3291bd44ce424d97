"""What the CNN looks at: integrated-gradients attribution of its P(fake) to the input pixels.

Integrated gradients (Sundararajan, Taly & Yan 2017): for a stamp x and a
baseline x0, the attribution of pixel i is (x_i - x0_i) times the mean
gradient of P(fake) along the straight path from x0 to x. The attributions of
a stamp add up to P(fake)(x) - P(fake)(x0) (completeness), and a pixel that
changes nothing gets none. The baseline is an empty sky: every flux channel at
the training split's median and every inverse-variance channel at its median
(the manifest's normalisation centres), so an attribution says how much that
pixel, as it is rather than as blank sky, pushes the CNN toward "fake"
(positive) or "real" (negative).

Why not the alternatives: gradient x input is integrated gradients with one
step, noisy and unfaithful where the network saturates (and the CNN is very
sure on the controls); Grad-CAM maps at the last convolution's resolution (8 x
8 pixels for a 64-pixel stamp), too coarse for the one- or two-pixel
differences a PSF error makes, and it mixes the channels. tf-keras-vis 0.8.7
was checked: its Saliency and Gradcam run with Keras 3.15 and TensorFlow 2.21
on a plain functional model, but it has no integrated gradients, reduces over
channels, and adds three dependencies for what is here a few lines of
``tf.GradientTape``.

Computed for the test stamps the CNN is surest about in each class (correctly
classified, highest confidence) and for the report's galleries (the surest
mistakes, :func:`realfake.formats.evaluation.surest_mistakes`); only those stamps are read.
"""

from __future__ import annotations

import numpy as np

from realfake.formats.evaluation import surest_mistakes
from realfake.formats.shardset import ShardSet

STEPS = 32  # points on the path from the baseline (midpoint rule)
SUREST = 64  # stamps per class averaged for the class maps
GALLERY = 8  # stamps per gallery
PATH_BATCH = 256  # stamps on the path evaluated at once


def surest_right(labels: np.ndarray, scores: np.ndarray, label: int, size: int) -> list[int]:
    """The ``size`` examples of class ``label`` the model is surest about, and right: fakes by decreasing
    P(fake) above 0.5, reals by increasing P(fake) below 0.5."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    members = np.flatnonzero((labels == label) & ((scores > 0.5) if label == 1 else (scores < 0.5)))
    confidence = scores[members] if label == 1 else 1.0 - scores[members]
    return [int(position) for position in members[np.argsort(-confidence, kind="stable")[:size]]]


def baseline_stamp(shard_set: ShardSet) -> np.ndarray:
    """The empty-sky baseline (S, S, C): each channel at its training median (the manifest's normalisation)."""
    channels = shard_set.manifest.normalization["channels"]
    medians = np.array([float(channels[name]["median"]) for name in shard_set.channel_names], dtype=np.float32)
    return np.broadcast_to(medians, shard_set.stamp_shape).astype(np.float32)


def integrated_gradients(model, stamps: np.ndarray, baseline: np.ndarray, steps: int = STEPS) -> np.ndarray:
    """Integrated gradients of P(fake) (the model's softmax output 1) for ``stamps`` (n, S, S, C), float32."""
    import tensorflow as tf

    if len(stamps) == 0:
        return np.zeros_like(stamps)
    alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps
    difference = stamps.astype(np.float32) - baseline[None]
    gradients = np.zeros_like(difference)
    per_batch = max(1, PATH_BATCH // steps)
    for start in range(0, len(stamps), per_batch):
        chunk = difference[start : start + per_batch]
        path = baseline[None, None] + alphas[:, None, None, None, None] * chunk[None]
        path = tf.convert_to_tensor(path.reshape(-1, *stamps.shape[1:]))
        with tf.GradientTape() as tape:
            tape.watch(path)
            probability = model(path, training=False)[:, 1]
        gradient = tape.gradient(probability, path).numpy().reshape(steps, len(chunk), *stamps.shape[1:])
        gradients[start : start + per_batch] = gradient.mean(axis=0)
    return difference * gradients


def attribution_maps(model, shard_set: ShardSet, labels: np.ndarray, scores: np.ndarray) -> dict:
    """The arrays of ``attribution.npz``: per class the mean attribution (S, S, C) over its :data:`SUREST`
    surest right stamps, and the attributions of the :data:`GALLERY` surest mistakes of each class, with the
    positions (test rows) they are of."""
    baseline = baseline_stamp(shard_set)
    result = {"channel_names": np.array(shard_set.channel_names), "baseline": baseline, "steps": np.array(STEPS)}
    for label, name in ((1, "fake"), (0, "real")):
        positions = surest_right(labels, scores, label, SUREST)
        attributions = integrated_gradients(model, shard_set.read_examples("test", positions), baseline)
        result[f"surest_{name}_positions"] = np.array(positions, dtype=np.int64)
        result[f"surest_{name}_mean"] = (
            attributions.mean(axis=0) if len(positions) else np.zeros(shard_set.stamp_shape, np.float32)
        )
        mistakes = surest_mistakes(labels, scores, label, GALLERY)
        result[f"gallery_{name}_positions"] = np.array(mistakes, dtype=np.int64)
        result[f"gallery_{name}"] = integrated_gradients(model, shard_set.read_examples("test", mistakes), baseline)
    return result
