"""A kernel two-sample test on the central pixels: the Gaussian-kernel MMD, with a within-brick permutation p-value.

No training: the maximum mean discrepancy (Gretton et al. 2012) between the real and fake stamps' central
K x K pixels of every channel (K = ``StatisticsSettings.mmd_pixels``, 16 by default), after the per-channel
transform the CNN sees (:func:`normalized_stamps`). It is strong on size errors: the galaxy's core at full
resolution is what the kernel compares (issue 24: on the demo mock with radii 1.5 times too large, p = 0.002
from about 1,800 stamps, where averaging 4 x 4 blocks lost the signal).

- **Statistic**: the unbiased MMD^2 (the U-statistic, the diagonal k(x, x) left out), whose expectation is 0
  when the classes do not differ, so the value itself reads as a distance and a null run sits about 0 (the
  biased one is positive by about 2/N whatever the data). The permutation p-value does not depend on which.
- **Kernel**: k(x, y) = exp(-|x - y|^2 / (2 h^2)) on the flattened K x K x C pixels, h^2 the median of the
  squared distances between the pairs of the pooled sample (both classes; of 2,000 of its examples, evenly
  spaced, when it holds more): the median heuristic. The pooled sample does not change when labels are
  permuted, so one bandwidth serves the observed statistic and every permutation.
- **Permutations within bricks**: the brick, not the stamp, is the unit (:mod:`realfake.stats.clusters`): the
  stamps of a brick share its sky, depth and PSF. Labels are permuted among the stamps of each brick (a
  stratified permutation test), which is exact under the null that within each brick real and fake stamps are
  exchangeable, however much bricks differ from one another. A brick with one class only has nothing to
  permute, and its stamps would put brick-to-brick differences into the statistic: they are left out
  (``examples_left_out``). With no brick holding both classes the test is not run (``p_value`` None, the
  sentence says why). Without brick names every example is one stratum (``permutation: global``).
- **Subsample**: at most M = ``mmd_examples`` per class, drawn with the seed as pairs within bricks: round
  after round, each brick (in a seeded order) gives one real and one fake while it has both, until M pairs.
  Every brick keeps as many reals as fakes, and the sample is spread over as many bricks as it can be (at the
  user's scale, one pair from each of M bricks, not a few stamps of a class scattered over bricks where the
  permutation would have nothing to swap).
- **Examples**: every split (train, validation and test; ``splits``): the test needs no training, so it can use
  them all for power. It is therefore not on the CNN's test examples alone; the record says which splits.

Cost: the kernel matrix is computed once, in float32 blocks of rows (O(N^2 K^2 C)), and each permutation only
re-sums it: P permutations are one (N, N) x (N, P) matrix product, O(P N^2) additions, never P kernel matrices.
On 2 x 2,000 examples of 16 x 16 x 6 on this 2-core machine (shared with other jobs): about 1 s for the kernel
and 0.5 s for 200 permutations; 2.8 s in all from a shard set, with reading the 4,000 whole stamps (the inverse
variances are taken relative to each whole stamp's mean). Memory: the (N, N) float64 kernel, 128 MB at
N = 4,000; both grow as N^2 (about a minute and 3 GB at 10,000 per class).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from realfake.conventions import SPLITS, is_inverse_variance
from realfake.errors import RealfakeError
from realfake.formats.shardset import ShardSet
from realfake.stats import corrections
from realfake.stats.clusters import brick_codes, cluster_codes
from realfake.stats.settings import StatisticsSettings

# The CNN's relative-depth unit (realfake.model.network.DEPTH_SCALE), repeated so that the evaluation imports no
# TensorFlow; tests/evaluation/test_mmd.py checks the two transforms agree.
DEPTH_SCALE = 0.05
ROW_BLOCK = 1024  # kernel rows computed at once
PERMUTATION_BLOCK = 64  # permutations re-summed at once
READ_BLOCK = 256  # whole stamps read at once
BANDWIDTH_EXAMPLES = 2000  # the median heuristic's pairs: of at most this many examples (2 million pairs)


def normalized_stamps(stamps: np.ndarray, channel_names, normalization: dict) -> np.ndarray:
    """``stamps`` float32 (n, S, S, C) as the CNN's input layer sees them
    (:class:`realfake.model.network.InputNormalization` with relative depth, as every model realfake builds),
    float32 (n, S, S, C): flux channels asinh((x - median) / mad_sigma) with the training split's statistics
    (the manifest's ``normalization.channels``); inverse-variance channels asinh((x / m - 1) / 0.05), m the mean
    of the stamp's covered (> 0) pixels in that channel (an uncovered stamp stays 0, giving asinh(-20)).

    A numpy copy of that layer, so that evaluating needs no TensorFlow. RealfakeError naming the channel when a
    flux channel's statistics are missing or unusable."""
    stamps = np.asarray(stamps, dtype=np.float64)
    result = np.empty(stamps.shape, dtype=np.float32)
    statistics = normalization.get("channels", {})
    for channel, name in enumerate(channel_names):
        values = stamps[..., channel]
        if is_inverse_variance(name):
            covered = values > 0
            count = covered.sum(axis=(1, 2), keepdims=True)
            mean = np.where(covered, values, 0.0).sum(axis=(1, 2), keepdims=True) / np.maximum(count, 1)
            relative = values / np.where(mean > 0, mean, 1.0)
            result[..., channel] = np.arcsinh((relative - 1.0) / DEPTH_SCALE)
            continue
        try:
            median = float(statistics[name]["median"])
            scale = float(statistics[name]["mad_sigma"])
        except (KeyError, TypeError, ValueError):
            raise RealfakeError(f"normalization.channels.{name} needs numeric 'median' and 'mad_sigma'") from None
        if not (math.isfinite(median) and math.isfinite(scale) and scale > 0):
            raise RealfakeError(f"normalization.channels.{name} needs a finite median and mad_sigma > 0")
        result[..., channel] = np.arcsinh((values - median) / scale)
    return result


def central_window(stamp_size: int, pixels: int) -> slice:
    """The central ``pixels`` rows (or columns) of a stamp, the source pixel S/2 at index ``pixels // 2``."""
    if not 1 <= pixels <= stamp_size:
        raise RealfakeError(f"mmd pixels must be between 1 and the stamp size {stamp_size}, got {pixels}")
    first = stamp_size // 2 - pixels // 2
    return slice(first, first + pixels)


def paired_sample(labels: np.ndarray, bricks: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted positions of at most ``per_class`` (real, fake) pairs, each pair within one brick: round after
    round, each brick holding both classes (in a seeded order) gives one more real and one more fake, until
    ``per_class`` pairs; bricks with one class give none. ``labels`` 0/1 and ``bricks`` (non-negative integer
    codes) are per example. O(N log N): no loop over bricks, for 12 million examples in 20,000 bricks."""
    labels, codes = np.asarray(labels).astype(np.int64), cluster_codes(np.asarray(bricks))
    if labels.size == 0:
        return np.empty(0, dtype=np.int64)
    rng = np.random.default_rng([seed, 24, 1])
    slots = int(codes.max()) + 1
    groups = codes * 2 + labels
    order = np.lexsort((rng.random(labels.size), groups))
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    rank = np.empty(labels.size, dtype=np.int64)
    rank[order] = np.arange(labels.size) - np.repeat(starts, np.diff(np.r_[starts, labels.size]))
    pairs = np.bincount(groups, minlength=2 * slots).reshape(slots, 2).min(axis=1)
    # A pair's round: its rank in its brick, then the brick's place in a seeded order, so the first pairs
    # taken spread over every brick. Each round value names one real and one fake.
    rounds = rank * slots + rng.permutation(slots)[codes]
    kept = np.flatnonzero(rank < pairs[codes])
    if kept.size == 0:
        return kept
    limit = np.sort(rounds[kept[labels[kept] == 0]])[: min(per_class, kept.size // 2)][-1]
    return np.sort(kept[rounds[kept] <= limit])


def within_brick_permutations(labels: np.ndarray, bricks: np.ndarray, count: int, rng) -> np.ndarray:
    """``count`` permutations of ``labels`` (n,), each permuting only among examples of the same brick
    (``bricks``: codes or names); int8 (count, n). Every brick keeps its count of each label."""
    labels, codes = np.asarray(labels), cluster_codes(np.asarray(bricks))
    order = np.argsort(codes, kind="stable")
    # A random key in [code, code + 1) per example: sorting the keys shuffles each brick's block in place.
    keys = rng.random((count, labels.size)) + codes[order][None, :]
    shuffled = order[np.argsort(keys, axis=1)]
    permuted = np.empty((count, labels.size), dtype=np.int8)
    permuted[:, order] = labels[shuffled]
    return permuted


def gaussian_kernel(features: np.ndarray) -> tuple[np.ndarray, float]:
    """The Gaussian kernel matrix float64 (n, n) of ``features`` (n, d) and its bandwidth h (the median
    heuristic: h^2 the median squared distance over the pairs of the pooled examples, or of
    :data:`BANDWIDTH_EXAMPLES` of them evenly spaced, chosen without the labels), computed in float32 blocks of
    rows."""
    features = np.asarray(features, dtype=np.float32)
    count = features.shape[0]
    norms = np.einsum("ij,ij->i", features, features, dtype=np.float64)
    kernel = np.empty((count, count), dtype=np.float64)
    for start in range(0, count, ROW_BLOCK):
        block = slice(start, min(start + ROW_BLOCK, count))
        products = (features[block] @ features.T).astype(np.float64)
        kernel[block] = np.maximum(norms[block, None] + norms[None, :] - 2.0 * products, 0.0)
    np.fill_diagonal(kernel, 0.0)
    subset = np.unique(np.linspace(0, count - 1, min(count, BANDWIDTH_EXAMPLES)).astype(np.int64))
    pairs = kernel[np.ix_(subset, subset)][np.triu_indices(subset.size, k=1)]
    squared_bandwidth = float(np.median(pairs)) if pairs.size else 1.0
    if not squared_bandwidth > 0:
        squared_bandwidth = 1.0  # every pair identical: any bandwidth gives the same (zero) statistic
    np.multiply(kernel, -0.5 / squared_bandwidth, out=kernel)
    return np.exp(kernel, out=kernel), math.sqrt(squared_bandwidth)


def mmd_statistics(kernel: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The unbiased MMD^2 between label 1 and label 0 for each row of ``labels`` (p, n) (or one (n,)) on the
    kernel matrix (n, n), its diagonal left out: every labelling re-sums the same matrix (one matrix product per
    block of labellings), so p labellings cost O(p n^2) additions. float64 (p,) (or a float)."""
    single = np.ndim(labels) == 1
    labels = np.atleast_2d(labels)
    diagonal = np.diag(kernel).copy()
    row_sums = kernel.sum(axis=1) - diagonal
    total = row_sums.sum()
    values = []
    for start in range(0, labels.shape[0], PERMUTATION_BLOCK):
        fakes = labels[start : start + PERMUTATION_BLOCK].T.astype(np.float64)  # (n, block)
        within_fakes = np.einsum("ip,ip->p", fakes, kernel @ fakes - diagonal[:, None] * fakes)
        to_all = fakes.T @ row_sums
        fake_count = fakes.sum(axis=0)
        real_count = labels.shape[1] - fake_count
        within_reals = total - 2.0 * to_all + within_fakes
        between = to_all - within_fakes
        values.append(
            within_fakes / (fake_count * (fake_count - 1))
            + within_reals / (real_count * (real_count - 1))
            - 2.0 * between / (fake_count * real_count)
        )
    result = np.concatenate(values) if values else np.empty(0)
    return float(result[0]) if single else result


def mmd_test(features: np.ndarray, labels: np.ndarray, bricks: np.ndarray | None, settings: StatisticsSettings) -> dict:
    """The MMD two-sample test of ``features`` (n, d) (fake = label 1), its labels permuted within ``bricks``
    (non-negative integer codes; None: across all examples) ``settings.mmd_permutations`` times, seeded by
    ``settings.seed``. Examples of a brick holding one class only are left out: they have nothing to permute.

    Returns ``statistic`` (the unbiased MMD^2), ``p_value`` ((1 + permutations at least as large) / (1 + P); None
    when not run), ``permutations``, ``bandwidth`` (h, in the normalised units), ``examples_per_class``
    ({real, fake}, those tested), ``examples_left_out``, ``bricks`` (holding both classes), ``permutation``
    (within_brick or global) and ``reason`` (why the test was not run, or None)."""
    labels = np.asarray(labels).astype(np.int8)
    codes = np.zeros(labels.size, np.int64) if bricks is None else cluster_codes(np.asarray(bricks))
    slots = int(codes.max(initial=-1)) + 1
    counts = np.bincount(codes * 2 + labels, minlength=2 * slots).reshape(slots, 2)
    mixed = (counts > 0).all(axis=1)
    kept = mixed[codes]
    features, labels, codes = np.asarray(features)[kept], labels[kept], codes[kept]
    record = {
        "statistic": None,
        "p_value": None,
        "permutations": settings.mmd_permutations,
        "bandwidth": None,
        "examples_per_class": {"real": int((labels == 0).sum()), "fake": int((labels == 1).sum())},
        "examples_left_out": int(kept.size - kept.sum()),
        "bricks": int(mixed.sum()),
        "permutation": "global" if bricks is None else "within_brick",
        "reason": None,
    }
    if min(record["examples_per_class"].values()) < 2:
        record["reason"] = (
            "no brick holds both classes"
            if not mixed.any()
            else "fewer than two examples of a class in the bricks holding both classes"
        )
        return record
    kernel, bandwidth = gaussian_kernel(features)
    observed = mmd_statistics(kernel, labels)
    rng = np.random.default_rng([settings.seed, 24, 2])
    permuted = mmd_statistics(kernel, within_brick_permutations(labels, codes, settings.mmd_permutations, rng))
    # A relative tolerance, so that a permutation giving the observed labelling counts despite rounding.
    exceed = int(np.count_nonzero(permuted >= observed - 1e-9 * abs(observed)))
    record.update(statistic=observed, p_value=(1 + exceed) / (1 + settings.mmd_permutations), bandwidth=bandwidth)
    return record


def central_pixels(shard_set: ShardSet, split: str, positions: np.ndarray, pixels: int) -> np.ndarray:
    """The normalised (:func:`normalized_stamps`) central ``pixels`` x ``pixels`` of every channel of the
    examples of ``split`` at sorted ``positions``, flattened: float32 (n, pixels * pixels * C). Whole stamps are
    read, a block at a time: the inverse variances are taken relative to the whole stamp's mean, as the CNN's."""
    window = central_window(shard_set.stamp_size, pixels)
    result = np.empty((len(positions), pixels * pixels * len(shard_set.channel_names)), dtype=np.float32)
    for start in range(0, len(positions), READ_BLOCK):
        block = positions[start : start + READ_BLOCK]
        stamps = normalized_stamps(
            shard_set.read_examples(split, block), shard_set.channel_names, shard_set.manifest.normalization
        )
        result[start : start + len(block)] = stamps[:, window, window, :].reshape(len(block), -1)
    return result


def kernel_two_sample(shard_set: ShardSet, settings: StatisticsSettings) -> dict:
    """:func:`mmd_test` of the central ``settings.mmd_pixels`` pixels of a :func:`paired_sample` of at most
    ``settings.mmd_examples`` per class drawn from every split's examples; the record for metrics.json, with
    ``pixels``, ``splits``, ``examples_available`` (all examples of those splits), ``examples_left_out``
    (those not tested: of bricks with one class only, beyond a brick's pairs or beyond the cap). No wall time:
    metrics.json must be the same file whenever the inputs are (the caller says how long it took)."""
    central_window(shard_set.stamp_size, settings.mmd_pixels)  # the setting's error before any reading
    splits = [
        split
        for split in SPLITS
        if shard_set.examples(split) and all(path.is_file() for path in shard_set.catalog_paths(split))
    ]
    catalogs = [
        pd.DataFrame({column: shard_set.catalog_column(split, column) for column in _columns(shard_set, split)})
        for split in splits
    ]
    table = pd.concat(catalogs, keys=range(len(splits)), names=["split", "position"]).reset_index()
    labels = table["label"].to_numpy()
    codes = brick_codes(table)
    chosen = paired_sample(labels, np.zeros(labels.size, np.int64) if codes is None else codes,
                           settings.mmd_examples, settings.seed)  # fmt: skip
    split_of, position = table["split"].to_numpy()[chosen], table["position"].to_numpy()[chosen]
    features = np.concatenate(
        [
            central_pixels(shard_set, split, position[split_of == index], settings.mmd_pixels)
            for index, split in enumerate(splits)
        ]
    )
    chosen = np.concatenate([chosen[split_of == index] for index in range(len(splits))])
    record = mmd_test(features, labels[chosen], None if codes is None else codes[chosen], settings)
    record.update(
        pixels=settings.mmd_pixels,
        splits=splits,
        examples_available=int(labels.size),
        examples_left_out=int(labels.size - chosen.size + record["examples_left_out"]),
    )
    return record


def _columns(shard_set: ShardSet, split: str) -> list[str]:
    """``label`` and, when the split's catalog has it, ``brickname``."""
    names = pq.read_schema(shard_set.catalog_paths(split)[0]).names
    return ["label", *(["brickname"] if "brickname" in names else [])]


def mmd_sentence(record: dict, cnn: dict, significance: float) -> str:
    """The report's sentence on the MMD test (``record`` from :func:`kernel_two_sample`), against the CNN's
    verdict ``cnn`` (its ``significant``): when the MMD finds a difference the CNN does not, it says so."""
    examples = record["examples_per_class"]
    where = (
        f"the central {record['pixels']}×{record['pixels']} pixels of {examples['real']} real and {examples['fake']} "
        f"fake stamps from the {', '.join(record['splits'])} splits"
    )
    if record["p_value"] is None:
        return f"The kernel two-sample test on the central pixels was not run: {record['reason']}."
    result = (
        f"MMD² = {record['statistic']:.2g}, p = {corrections.format_p(record['p_value'])} from "
        f"{record['permutations']} permutations within {record['bricks']} brick(s), on {where}"
    )
    if record["p_value"] < significance and not cnn.get("significant"):
        return f"A kernel two-sample test on the central pixels finds a difference the CNN does not: {result}."
    if record["p_value"] < significance:
        return f"A kernel two-sample test on the central pixels finds a difference too: {result}."
    return f"A kernel two-sample test on the central pixels finds no difference: {result}."
