"""The difference in pixels (class-mean stamps, significance, radial profiles), the CNN's attribution maps, and
the fakes' scores against their injected parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from realfake.conventions import channel_names
from realfake.evaluation.attribution import attribution_maps, baseline_stamp, integrated_gradients, surest_right
from realfake.evaluation.fake_parameters import fake_parameter_breakdowns, most_fake_looking
from realfake.evaluation.pixels import (
    PixelSums,
    accumulate,
    annuli,
    bin_of,
    magnitude_edges,
    pixel_summary,
    relative_depth,
)
from realfake.formats.shardset import open_shard_set, write_shard_set
from realfake.stats.settings import StatisticsSettings

SIZE = 32
CHANNELS = channel_names(("g", "r", "z"))


def _galaxies(rng: np.random.Generator, count: int, width: float, flux: float = 2.0) -> np.ndarray:
    """Round Gaussian galaxies of the given width (pixels) at the stamp centre, in sky noise, with inverse
    variances; float32 (count, SIZE, SIZE, 6)."""
    rows, columns = np.mgrid[0:SIZE, 0:SIZE]
    profile = np.exp(-((rows - SIZE // 2) ** 2 + (columns - SIZE // 2) ** 2) / (2 * width**2))
    profile /= profile.sum()
    stamps = np.empty((count, SIZE, SIZE, 6), dtype=np.float32)
    stamps[..., :3] = flux * profile[None, :, :, None] + rng.normal(0, 0.01, (count, SIZE, SIZE, 3))
    stamps[..., 3:] = rng.uniform(8000, 12000, (count, 1, 1, 3))
    return stamps


def _shard_set(directory, fake_width: float, count: int = 400, seed: int = 0):
    """A shard set whose test split holds ``count`` reals of width 1.5 pixels and as many fakes of
    ``fake_width``, all of one magnitude range; shards of 128."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat([0, 1], count)).astype(np.int32)
    stamps = np.where(
        (labels == 1)[:, None, None, None], _galaxies(rng, 2 * count, fake_width), _galaxies(rng, 2 * count, 1.5)
    )
    catalog = pd.DataFrame({"label": labels, "mag_dered_g": rng.uniform(21, 24, 2 * count)})
    small = (stamps[:8], labels[:8], catalog.iloc[:8].reset_index(drop=True))
    splits = {"train": small, "validation": small, "test": (stamps, labels, catalog)}
    write_shard_set(directory, splits, CHANNELS, {"fixture": "test_pixels", "width": fake_width, "seed": seed}, 128)
    return open_shard_set(directory), stamps, labels, catalog


def test_the_annuli_average_a_stamp_into_its_radial_profile():
    radii, averaging = annuli(SIZE)
    assert radii.tolist() == list(range(SIZE // 2 + 1))
    np.testing.assert_allclose(averaging.sum(axis=0), 1.0)
    rows, columns = np.mgrid[0:SIZE, 0:SIZE]
    distance = np.rint(np.hypot(rows - SIZE // 2, columns - SIZE // 2)).ravel()
    np.testing.assert_allclose(distance @ averaging, radii)  # a stamp whose value is its radius


def test_bins_are_quantiles_and_leave_out_what_has_no_magnitude():
    values = np.array([20.0, 21.0, 22.0, 23.0, np.nan, 24.0, 25.0, 26.0, 27.0])
    edges = magnitude_edges(values, 4)
    assert edges[0] == 20.0 and edges[-1] == 27.0 and edges.size == 5
    bins = bin_of(values, edges)
    assert bins[4] == -1 and bins[0] == 0 and bins[-1] == 3
    assert np.bincount(bins[bins >= 0]).tolist() == [2, 2, 2, 2]


def test_streamed_means_errors_and_significance_equal_the_in_memory_ones(tmp_path):
    shard_set, stamps, labels, catalog = _shard_set(tmp_path / "shards", fake_width=1.5)
    edges = magnitude_edges(catalog["mag_dered_g"].to_numpy(), 2)
    summary = pixel_summary(accumulate(shard_set, "mag_dered_g", edges), CHANNELS)
    bins = bin_of(catalog["mag_dered_g"].to_numpy(), edges)
    stamps = relative_depth(stamps.astype(np.float64), np.array([False] * 3 + [True] * 3))
    np.testing.assert_allclose(stamps[..., 3:], 1.0)  # these stamps' depth is uniform: 1 relative to their mean
    for magnitude_bin in (0, 1):
        for label in (0, 1):
            members = stamps[(bins == magnitude_bin) & (labels == label)]
            assert summary["counts"][magnitude_bin, label] == len(members)
            np.testing.assert_allclose(summary["mean"][magnitude_bin, label], members.mean(axis=0), atol=1e-9)
            error = members.std(axis=0, ddof=1) / np.sqrt(len(members))
            np.testing.assert_allclose(summary["standard_error"][magnitude_bin, label], error, rtol=1e-6, atol=1e-12)
        # Welch's test, in memory: its two-sided p-value as the signed normal z.
        fakes, reals = (stamps[(bins == magnitude_bin) & (labels == label), ..., :3] for label in (1, 0))
        welch = stats.ttest_ind(fakes, reals, equal_var=False)
        z = np.sign(welch.statistic) * stats.norm.isf(welch.pvalue / 2)
        np.testing.assert_allclose(summary["significance"][magnitude_bin, ..., :3], z, rtol=1e-6)
    # The memory is the accumulators', whatever the number of examples: a few stamps per bin and class.
    sums = PixelSums.empty(edges, SIZE, 6)
    assert sums.sums.shape == (2, 2, SIZE, SIZE, 6)


def test_no_pixel_passes_bonferroni_when_the_classes_are_alike(tmp_path):
    shard_set, *_ = _shard_set(tmp_path / "shards", fake_width=1.5, seed=3)
    edges = magnitude_edges(shard_set.catalog("test")["mag_dered_g"].to_numpy(), 2)
    summary = pixel_summary(accumulate(shard_set, "mag_dered_g", edges), CHANNELS)
    assert summary["significant_pixels"].sum() == 0
    # The threshold is Bonferroni's over every pixel of every channel and bin with a defined z: 2 x 32 x 32 x 3 here
    # (these stamps' inverse variances are uniform, 1 relative to their mean, in both classes: no z).
    assert float(summary["bonferroni_z"]) == pytest.approx(stats.norm.isf(0.05 / (2 * 2 * SIZE * SIZE * 3)))
    assert (np.abs(summary["significance"][..., :3]) < float(summary["bonferroni_z"])).all()


# Null replications per sample size; at a true family-wise rate of 0.05 the count of replications with a pixel
# past the threshold exceeds the binomial 95% upper limit, 27 of 400, with probability 0.03.
REPLICATIONS = 400
UPPER_LIMIT = int(stats.binom.ppf(0.95, REPLICATIONS, 0.05))


def _normal_null_sums(rng: np.random.Generator, per_class: int, shape: tuple[int, ...]) -> PixelSums:
    """The sums of ``per_class`` standard normal examples per class in every pixel of ``shape`` = (bins, S, S,
    C), drawn directly: sum = n * mean with mean ~ N(0, 1/n), sum of squares = chi^2(n - 1) + n * mean^2."""
    bins, size, _, channels = shape
    sums = PixelSums.empty(np.linspace(21, 24, bins + 1), size, channels)
    mean = rng.standard_normal(sums.sums.shape) / np.sqrt(per_class)
    sums.counts[:] = per_class
    sums.sums[:] = per_class * mean
    sums.squares[:] = rng.chisquare(per_class - 1, sums.sums.shape) + per_class * np.square(mean)
    sums.minimum, sums.maximum = np.full_like(mean, -np.inf), np.full_like(mean, np.inf)  # the sums only: no range
    return sums


def _heavy_tailed_null_sums(rng: np.random.Generator, per_class: int, size: int, channels: int, draw) -> PixelSums:
    """The streamed sums of ``per_class`` stamps per class, one magnitude bin, every pixel drawn from ``draw``."""
    sums = PixelSums.empty(np.array([21.0, 24.0]), size, channels)
    labels = np.repeat([0, 1], per_class)
    stamps = draw(rng, (2 * per_class, size, size, channels))
    sums.add(stamps, labels, np.zeros(labels.size, dtype=int), annuli(size)[1], np.zeros(channels, dtype=bool))
    return sums


def _student_t3(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32) / np.sqrt(rng.standard_gamma(1.5, shape, np.float32) / 1.5)


def _lognormal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.exp(rng.standard_normal(shape, dtype=np.float32))


def test_no_pixel_passes_by_chance_more_often_than_alpha_at_demo_sizes():
    """The family-wise error rate of the significance maps, by simulation at 50 and 200 examples per class and
    bin: normal pixels over 4 bins x 32 x 32 x 3 channels (12,288 tests: with the normal quantile in place of
    the t, 14% of the null replications at 50 per class had a pixel past the threshold, and 20% at the demo's
    98,304), and heavy-tailed ones (Student t with 3 degrees of freedom, lognormal) streamed through the sums."""
    for per_class in (50, 200):
        rng = np.random.default_rng([21, per_class])
        passed = [
            pixel_summary(_normal_null_sums(rng, per_class, (4, SIZE, SIZE, 3)), CHANNELS[:3])[
                "significant_pixels"
            ].sum()
            > 0
            for _ in range(REPLICATIONS)
        ]
        # Bonferroni over independent exact tests: 1 - (1 - 0.05 / m)^m = 0.049; below 11 of 400 with p < 0.01.
        assert 11 <= sum(passed) <= UPPER_LIMIT, (per_class, sum(passed))
        # Heavy tails, fewer pixels (the cost is one draw per pixel and example): 16 x 16 x 2 at 50, 8 x 8 x 2 at 200.
        size = 16 if per_class == 50 else 8
        for draw in (_student_t3, _lognormal):
            passed = [
                pixel_summary(_heavy_tailed_null_sums(rng, per_class, size, 2, draw), CHANNELS[:2])[
                    "significant_pixels"
                ].sum()
                > 0
                for _ in range(REPLICATIONS)
            ]
            assert sum(passed) <= UPPER_LIMIT, (per_class, draw.__name__, sum(passed))


def test_a_pixel_constant_in_each_class_is_tested_exactly():
    """No scatter in either class: different values are a complete separation, tested and counted with the
    permutation test's p-value 1 / C(n_real + n_fake, n_fake); the same value (here 0.1, whose sums round
    differently for 20 and 23 examples) is not a test."""
    rng = np.random.default_rng(5)
    labels = np.repeat([0, 1], [20, 23])
    stamps = rng.normal(0, 1, (labels.size, 8, 8, 2))
    stamps[:, 0, 0, 0] = np.where(labels == 1, 1.0, 0.0)
    stamps[:, 0, 1, 0] = 0.1
    sums = PixelSums.empty(np.array([21.0, 24.0]), 8, 2)
    sums.add(stamps, labels, np.zeros(labels.size, dtype=int), annuli(8)[1], np.zeros(2, dtype=bool))
    summary = pixel_summary(sums, ("g", "r"))
    separated = stats.norm.isf(0.5 / special.comb(43, 23))
    assert summary["significance"][0, 0, 0, 0] == pytest.approx(separated)
    assert np.isnan(summary["significance"][0, 0, 1, 0]) and summary["difference"][0, 0, 1, 0] == 0
    # Tested: every pixel but the one constant at 0.1 in both classes.
    assert float(summary["bonferroni_z"]) == pytest.approx(stats.norm.isf(0.05 / (2 * (8 * 8 * 2 - 1))))
    assert summary["significant_pixels"][0].tolist() == [1, 0]  # that pixel, and no noise pixel


def test_wider_fakes_show_wider_wings_and_a_fainter_core(tmp_path):
    shard_set, *_ = _shard_set(tmp_path / "shards", fake_width=3.0)
    edges = magnitude_edges(shard_set.catalog("test")["mag_dered_g"].to_numpy(), 1)
    summary = pixel_summary(accumulate(shard_set, "mag_dered_g", edges), CHANNELS)
    z = summary["profile_significance"][0]  # (radius, channel): fake - real
    for band in range(3):
        assert z[0, band] < -5  # fainter core
        assert (z[4:8, band] > 5).all()  # wider wings
    assert summary["significant_pixels"][0, :3].min() > 10
    assert summary["significant_pixels"][0, 3:].sum() == 0  # the inverse variances are alike


def test_a_fakes_own_variance_shows_as_a_central_dip_in_relative_depth(tmp_path):
    """Depth varying by tens of percent from stamp to stamp, and a 5% dip at the fakes' centres: lost in the
    scatter of the absolute inverse variance, significant in each pixel's depth relative to its stamp."""
    rng = np.random.default_rng(8)
    count = 400
    labels = rng.permutation(np.repeat([0, 1], count)).astype(np.int32)
    stamps = _galaxies(rng, 2 * count, 1.5)
    stamps[..., 3:] = 10 ** rng.uniform(3.5, 4.5, (2 * count, 1, 1, 3)) * rng.uniform(
        0.99, 1.01, (2 * count, SIZE, SIZE, 3)
    )
    dip = np.ones((SIZE, SIZE), dtype=np.float32)
    dip[SIZE // 2 - 1 : SIZE // 2 + 2, SIZE // 2 - 1 : SIZE // 2 + 2] = 0.95
    stamps[labels == 1, :, :, 3:] *= dip[None, :, :, None]
    catalog = pd.DataFrame({"label": labels, "mag_dered_g": rng.uniform(21, 24, 2 * count)})
    small = (stamps[:8], labels[:8], catalog.iloc[:8].reset_index(drop=True))
    splits = {"train": small, "validation": small, "test": (stamps, labels, catalog)}
    write_shard_set(tmp_path / "shards", splits, CHANNELS, {"fixture": "dip"}, 128)
    shard_set = open_shard_set(tmp_path / "shards")
    summary = pixel_summary(
        accumulate(shard_set, "mag_dered_g", magnitude_edges(catalog["mag_dered_g"].to_numpy(), 1)), CHANNELS
    )
    assert (summary["significant_pixels"][0, 3:] >= 9).all()  # the 3 x 3 dip in every band
    assert (summary["profile_significance"][0, 0, 3:] < -10).all()
    # On the absolute scale, the same dip is lost in the stamp-to-stamp depth: not one pixel passes.
    absolute = stamps[..., 3:].astype(np.float64)
    difference = absolute[labels == 1].mean(0) - absolute[labels == 0].mean(0)
    error = np.hypot(absolute[labels == 1].std(0, ddof=1), absolute[labels == 0].std(0, ddof=1)) / np.sqrt(count)
    assert (np.abs(difference / error) < float(summary["bonferroni_z"])).all()


def _model_and_shards(tmp_path):
    import keras

    from realfake.model.architectures import COMPACT
    from realfake.model.network import build_model, normalization_from_manifest

    shard_set, stamps, labels, catalog = _shard_set(tmp_path / "shards", fake_width=3.0, count=40)
    keras.utils.set_random_seed(4)
    model = build_model((SIZE, SIZE, 6), COMPACT, normalization_from_manifest(shard_set.manifest.to_json(), "manifest"))
    return model, shard_set, stamps, labels


def test_integrated_gradients_add_up_to_the_change_in_p_fake(tmp_path):
    model, shard_set, stamps, _ = _model_and_shards(tmp_path)
    baseline = baseline_stamp(shard_set)
    attributions = integrated_gradients(model, stamps[:4], baseline, steps=64)
    probability = model.predict(stamps[:4], verbose=0)[:, 1]
    at_baseline = model.predict(baseline[None], verbose=0)[0, 1]
    np.testing.assert_allclose(attributions.sum(axis=(1, 2, 3)), probability - at_baseline, atol=0.02)
    # A pixel equal to the baseline gets nothing.
    same = stamps[:1].copy()
    same[0, :4, :4, :] = baseline[:4, :4, :]
    assert np.all(integrated_gradients(model, same, baseline)[0, :4, :4, :] == 0)


def test_attribution_maps_average_the_surest_of_each_class_and_cover_the_galleries(tmp_path):
    model, shard_set, stamps, labels = _model_and_shards(tmp_path)
    scores = model.predict(stamps, verbose=0)[:, 1].astype(np.float64)
    maps = attribution_maps(model, shard_set, labels, scores)
    surest = surest_right(labels, scores, 1, 64)
    assert maps["surest_fake_positions"].tolist() == surest
    assert all(labels[position] == 1 and scores[position] > 0.5 for position in surest)
    expected = integrated_gradients(model, stamps[surest], baseline_stamp(shard_set)).mean(axis=0)
    np.testing.assert_allclose(maps["surest_fake_mean"], expected, rtol=1e-4, atol=1e-7)
    assert maps["gallery_real"].shape == (len(maps["gallery_real_positions"]), SIZE, SIZE, 6)
    assert all(labels[position] == 0 for position in maps["gallery_real_positions"])


def _fake_parameter_table(rng: np.random.Generator, count: int = 1200) -> pd.DataFrame:
    labels = np.repeat([0, 1], count // 2)
    size = rng.uniform(0.2, 1.2, count)
    table = pd.DataFrame({
        "label": labels, "id": np.arange(count), "mag_dered_g": rng.uniform(21, 24, count),
        "mag_dered_r": rng.uniform(21, 23, count), "size": size, "sersic_n": rng.choice([1.0, 4.0], count),
        "e1": rng.normal(0, 0.1, count), "e2": rng.normal(0, 0.1, count),
        "rsdir": np.where(labels == 1, rng.choice(["rs0", "rs50"], count), ""), "detected": True,
    })  # fmt: skip
    # The larger a fake's radius, the faker it looks; reals and small fakes alike.
    logit = rng.normal(0, 1, count) + np.where(labels == 1, 4 * np.clip(size - 0.7, 0, None), 0)
    table["p_fake"] = 1 / (1 + np.exp(-logit))
    return table


def test_the_fakes_auc_rises_with_the_injected_radius_that_makes_them_fake():
    table = _fake_parameter_table(np.random.default_rng(7))
    rows = fake_parameter_breakdowns(table, StatisticsSettings(bootstrap=200, bins=5))
    radius = rows[rows["parameter"] == "half-light radius (arcsec)"]
    assert len(radius) == 5 and radius["fakes"].sum() == 600
    assert radius["auc"].idxmax() == radius.index[-1]  # the largest radii
    assert radius["flagged"].iloc[-1] and not radius["flagged"].iloc[0]
    sersic = rows[rows["parameter"] == "Sersic index"]
    assert sersic["bin"].tolist() == ["1", "4"]  # one bin per value of a discrete parameter
    assert set(rows["parameter"]) >= {"true g magnitude", "true g - r", "ellipticity |e|", "rs dir", "detected"}
    most = most_fake_looking(table)
    assert len(most) == 20 and (np.diff(most["p_fake"]) <= 0).all()
    assert most["p_fake"].iloc[0] == table.loc[table["label"] == 1, "p_fake"].max()
