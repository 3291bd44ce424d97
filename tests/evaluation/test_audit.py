"""The shortcut audit: restricted views of the stamps, the audit's records and cause, and the
predictions files that carry each view's CNN from `realfake predict` to `realfake evaluate`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fixtures.synthetic_shards import save_model, write_shard_set

from realfake.cli import main
from realfake.conventions import channel_names
from realfake.errors import RealfakeError
from realfake.evaluation.audit import CAUSES, audit_cause, audit_records, audit_sentence
from realfake.formats.model import model_view, read_model
from realfake.formats.model import save_model as save_model_file
from realfake.formats.predictions import read_predictions
from realfake.formats.shardset import open_shard_set
from realfake.model.views import CENTRE_RADIUS, RING_RADIUS, VIEWS, view_mask
from realfake.stats.settings import StatisticsSettings

CHANNELS = channel_names(("g", "r", "z"))
SETTINGS = StatisticsSettings(bootstrap=200)


def test_each_view_shows_exactly_its_pixels_and_channels():
    radius = np.hypot(*np.mgrid[0:64, 0:64] - 32)
    full = view_mask("full", 64, CHANNELS)
    assert full.shape == (64, 64, 6) and (full == 1).all()
    image_only = view_mask("image_only", 64, CHANNELS)
    assert (image_only[..., :3] == 1).all() and (image_only[..., 3:] == 0).all()
    ivar_only = view_mask("ivar_only", 64, CHANNELS)
    assert (ivar_only[..., :3] == 0).all() and (ivar_only[..., 3:] == 1).all()
    centre = view_mask("centre_only", 64, CHANNELS)
    ring = view_mask("ring_only", 64, CHANNELS)
    for channel in range(6):
        np.testing.assert_array_equal(centre[..., channel], radius <= CENTRE_RADIUS)
        np.testing.assert_array_equal(ring[..., channel], radius > RING_RADIUS)
    # The source's own pixel (32, 32) is in the centre and never in the ring.
    assert centre[32, 32, 0] == 1 and ring[32, 32, 0] == 0
    with pytest.raises(RealfakeError, match="unknown view 'sky'"):
        view_mask("sky", 64, CHANNELS)


def test_a_view_model_sees_nothing_of_what_its_view_hides(tmp_path):
    """A model built for a view gives the same output whatever the hidden pixels hold, and records its view
    through saving and loading."""
    import keras

    from realfake.model.architectures import COMPACT
    from realfake.model.network import build_model, normalization_from_manifest

    manifest = write_shard_set(tmp_path / "shards", train_examples=8, test_examples=8, validation_examples=2)
    normalization = normalization_from_manifest(manifest, "manifest")
    rng = np.random.default_rng(3)
    stamps = rng.normal(0, 0.05, (4, 64, 64, 6)).astype(np.float32)
    stamps[..., 3:] = rng.uniform(500, 2000, (4, 64, 64, 3))
    radius = np.hypot(*np.mgrid[0:64, 0:64] - 32)
    for view in VIEWS[1:]:
        keras.utils.set_random_seed(1)
        model = build_model((64, 64, 6), COMPACT, normalization, view=view)
        changed = stamps.copy()
        hidden = view_mask(view, 64, CHANNELS) == 0
        changed[np.broadcast_to(hidden, changed.shape)] = 7.0  # hidden pixels: anything at all
        np.testing.assert_allclose(model.predict(changed, verbose=0), model.predict(stamps, verbose=0), atol=1e-6)
        if view == "centre_only":
            shown = stamps.copy()
            shown[:, radius <= CENTRE_RADIUS, 0] += 1.0  # a shown pixel changes the output
            assert not np.allclose(model.predict(shown, verbose=0), model.predict(stamps, verbose=0))
        path = tmp_path / f"{view}.keras"
        save_model_file(model, path)
        assert model_view(read_model(path)) == view


def _scores(rng: np.random.Generator, labels: np.ndarray, shift: float) -> np.ndarray:
    """Calibrated-looking scores whose AUC grows with ``shift`` (0: no difference)."""
    logits = rng.normal(0, 1, labels.size) + shift * labels
    return 1 / (1 + np.exp(-logits))


def _audit(
    shifts: dict[str, float],
    placement: dict | None = None,
    seed: int = 0,
    examples: int = 2000,
    full_sees: str | None = None,
    settings: StatisticsSettings = SETTINGS,
) -> tuple[list[dict], str]:
    """The audit of views whose scores have the AUC of ``shifts`` (view -> shift, independent scores) and of
    placement columns (column -> the fakes' values; the reals': uniform in 30-64 pixels). With ``full_sees``
    (a placement column) the full CNN scores what that column shows and nothing else."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(examples) % 2)
    views = {view: _scores(rng, labels, shift) for view, shift in shifts.items()}
    predictions = pd.DataFrame({"label": labels})
    for column, fake_values in (placement or {}).items():
        values = np.where(labels == 1, fake_values(rng, labels.size), rng.uniform(30, 64, labels.size))
        predictions[column] = values
    if full_sees is not None:
        values = predictions[full_sees].to_numpy()
        direction = 1.0 if values[labels == 1].mean() > values[labels == 0].mean() else -1.0
        views = {"full": direction * values + rng.normal(0, 1, labels.size), **views}
    records = audit_records(labels, views, predictions, settings)
    return records, audit_cause(records)


@pytest.mark.parametrize(
    ("shifts", "cause"),
    [
        # No difference at all: nothing to attribute.
        ({"full": 0.0, "image_only": 0.0, "ivar_only": 0.0, "centre_only": 0.0, "ring_only": 0.0}, "none"),
        # The galaxies: seen in the centre and in the images, not in the ring or the weights.
        ({"full": 1.5, "image_only": 1.5, "ivar_only": 0.0, "centre_only": 1.4, "ring_only": 0.0}, "galaxy"),
        # Another processing run's sky: the ring sees it as well as the centre does.
        ({"full": 1.5, "image_only": 1.5, "ivar_only": 0.0, "centre_only": 1.0, "ring_only": 1.5}, "sky"),
        # The weights: the ivar view beats the image view.
        ({"full": 1.5, "image_only": 0.0, "ivar_only": 1.5, "centre_only": 1.2, "ring_only": 0.0}, "inverse_variance"),
    ],
)
def test_the_audit_names_the_view_that_carries_the_difference(shifts, cause):
    records, found = _audit(shifts)
    assert found == cause
    by_view = {record["view"]: record for record in records}
    assert list(by_view) == list(shifts)  # one record per view, full first
    for view, shift in shifts.items():
        expected = "distinguishable" if shift >= 1.0 else ("inconclusive", "indistinguishable")
        assert by_view[view]["outcome"] in expected, (view, by_view[view])
    sentence = audit_sentence(found, records)
    assert sentence.startswith({"none": "The full CNN", "galaxy": "The centre", "sky": "The sky",
                                "inverse_variance": "The inverse-variance"}[cause])  # fmt: skip


def test_placement_in_either_direction_names_placement_when_it_explains_the_cnn():
    """A CNN that sees only where the fakes are placed: the placement column names the cause, in either
    direction, and the sentence says the column could explain all the CNN finds."""
    views = {"image_only": 0.0, "centre_only": 0.0, "ring_only": 0.0}
    # Fakes kept away from uncovered pixels (the reals: uniform in 30-64 pixels): larger distances, AUC above 0.5.
    records, cause = _audit(
        views, {"distance_to_no_coverage": lambda rng, n: rng.uniform(40, 64, n)}, full_sees="distance_to_no_coverage"
    )
    record = next(record for record in records if record["view"] == "distance_to_no_coverage")
    assert record["auc"] > 0.6 and record["outcome"] == "distinguishable" and cause == "placement"
    assert "could explain all the full CNN finds" in audit_sentence(cause, records)
    # Fakes nearer the edges: an AUC below 0.5 is a placement difference too.
    records, cause = _audit(
        views, {"distance_to_no_coverage": lambda rng, n: rng.uniform(20, 54, n)}, full_sees="distance_to_no_coverage"
    )
    record = next(record for record in records if record["view"] == "distance_to_no_coverage")
    assert record["auc"] < 0.4 and record["outcome"] == "distinguishable" and cause == "placement"
    # Placed alike: the galaxy again.
    views = {"full": 1.5, "image_only": 1.5, "centre_only": 1.5, "ring_only": 0.0}
    records, cause = _audit(views, {"distance_to_no_coverage": lambda rng, n: rng.uniform(30, 64, n)})
    record = next(record for record in records if record["view"] == "distance_to_no_coverage")
    assert record["outcome"] != "distinguishable" and cause == "galaxy"


def test_a_slight_placement_difference_is_not_the_cause_of_a_much_larger_one():
    """At 10,000 examples per class a placement column at AUC 0.53 is distinguishable; the image and centre
    views at 0.90 are where the CNN's difference lies, and the sentence says the placement does not explain it."""
    views = {"full": 1.81, "image_only": 1.81, "ivar_only": 0.0, "centre_only": 1.81, "ring_only": 0.0}
    records, cause = _audit(
        views, {"distance_to_no_coverage": lambda rng, n: rng.uniform(31.04, 65.04, n)}, seed=3, examples=20_000
    )
    record = next(record for record in records if record["view"] == "distance_to_no_coverage")
    assert record["auc"] == pytest.approx(0.53, abs=0.01) and record["outcome"] == "distinguishable"
    assert cause == "galaxy"
    sentence = audit_sentence(cause, records)
    assert sentence.startswith("The centre of the stamp")
    assert "placed differently (distance_to_no_coverage AUC 0.5" in sentence
    assert "but that does not explain the difference: the full CNN's AUC 0.8" in sentence
    assert "is significantly above distance_to_no_coverage's 0.5" in sentence


def test_views_whose_aucs_do_not_differ_significantly_leave_the_cause_undecided():
    """Centre 0.72 against ring 0.70 at 200 examples per class, 300 repetitions: a point estimate names the
    ring (the sky) in about a third of them; the paired test names it, wrongly, at most at its level (5%:
    15 of 300), and says undecided in most."""
    named = {"galaxy": 0, "sky": 0, "undecided": 0}
    # Few resamples: the intervals only decide that views at 0.70 and above are distinguishable.
    settings = StatisticsSettings(bootstrap=20)
    for seed in range(300):
        _, cause = _audit({"full": 1.5, "centre_only": 0.824, "ring_only": 0.741}, seed=seed, examples=400,
                          settings=settings)  # fmt: skip
        named[cause] += 1
    assert named["sky"] <= 15 and named["undecided"] >= 200, named


def test_two_supported_causes_are_both_named():
    """The inverse variances and the images each carry a difference of their own (their views see disjoint
    channels, and both are well above the line): both are named, not only the larger."""
    shifts = {"full": 1.8, "image_only": 1.2, "ivar_only": 1.5, "centre_only": 1.5, "ring_only": 0.0}
    records, cause = _audit(shifts, seed=4)
    assert cause == "inverse_variance+galaxy"
    sentence = audit_sentence(cause, records)
    assert sentence.startswith("The difference has more than one source")
    assert "the inverse-variance channels carry one" in sentence and "the centre of the stamp" in sentence


def test_undetected_fakes_are_a_placement_difference():
    labels = np.repeat([0, 1], 500)
    detected = np.ones(1000, dtype=bool)
    detected[500:650] = False  # 30% of the fakes legacypipe never found; every real is a detection
    rng = np.random.default_rng(1)
    predictions = pd.DataFrame({"label": labels, "detected": detected})
    # The CNN sees that a fake is missing from its stamp's catalogued sources, and nothing else.
    records = audit_records(labels, {"full": _scores(rng, labels, 0.0) + 3.0 * ~detected}, predictions, SETTINGS)
    record = records[-1]
    assert record["view"] == "detected" and record["auc"] == pytest.approx(0.65)
    assert audit_cause(records) == "placement"
    # Every example detected: no placement difference (the default matching excludes undetected fakes).
    predictions["detected"] = True
    records = audit_records(labels, {"full": _scores(rng, labels, 1.0)}, predictions, SETTINGS)
    assert records[-1]["auc"] == 0.5 and records[-1]["auc_p_value"] == 1.0
    assert records[-1]["outcome"] == "indistinguishable"


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    """A shard set, a full model and an ivar_only model, and each one's predictions from `realfake predict`."""
    import keras

    from realfake.model.architectures import COMPACT
    from realfake.model.network import build_model, normalization_from_manifest

    root = tmp_path_factory.mktemp("audit")
    manifest = write_shard_set(root / "shards", train_examples=64, test_examples=96, shard_size=32)
    save_model(root / "full.keras", manifest)
    keras.utils.set_random_seed(2)
    model = build_model((64, 64, 6), COMPACT, normalization_from_manifest(manifest, "manifest"), view="ivar_only")
    save_model_file(model, root / "ivar_only.keras")
    for view in ("full", "ivar_only"):
        status = main(["predict", "--shards", str(root / "shards"), "--model", str(root / f"{view}.keras"), "--out",
                       str(root / view / "predictions.parquet"), "--batch-size", "40"])  # fmt: skip
        assert status == 0
    return root


def test_predict_writes_the_test_split_in_order_with_its_provenance(predicted):
    shard_set = open_shard_set(predicted / "shards")
    for view in ("full", "ivar_only"):
        predictions = read_predictions(predicted / view / "predictions.parquet", shard_set, view=view)
        assert len(predictions) == 96
        pd.testing.assert_frame_equal(predictions[shard_set.catalog("test").columns], shard_set.catalog("test"))
        provenance = predictions.attrs["realfake"]
        assert provenance["shard_set"] == shard_set.identity and provenance["view"] == view


def test_evaluate_from_predictions_with_an_audit_equals_evaluate_from_the_model(predicted, tmp_path):
    shards = str(predicted / "shards")
    status = main(["evaluate", "--shards", shards, "--model", str(predicted / "full.keras"), "--out",
                   str(tmp_path / "direct"), "--bootstrap", "100"])  # fmt: skip
    assert status == 0
    status = main(["evaluate", "--shards", shards, "--predictions", str(predicted / "full" / "predictions.parquet"),
                   "--audit", f"ivar_only={predicted / 'ivar_only' / 'predictions.parquet'}", "--out",
                   str(tmp_path / "audited"), "--bootstrap", "100"])  # fmt: skip
    assert status == 0
    direct = json.loads((tmp_path / "direct" / "metrics.json").read_text())
    audited = json.loads((tmp_path / "audited" / "metrics.json").read_text())
    assert audited["verdict"] == direct["verdict"]
    assert [record["view"] for record in audited["audit"]] == ["full", "ivar_only"]
    assert audited["audit"][0]["auc"] == pytest.approx(direct["verdict"]["auc"])
    assert set(audited["audit_cause"].split("+")) <= set(CAUSES)
    predictions = pd.read_parquet(tmp_path / "audited" / "predictions.parquet")
    ivar_only = pd.read_parquet(predicted / "ivar_only" / "predictions.parquet")
    np.testing.assert_array_equal(predictions["p_fake_view_ivar_only"], ivar_only["p_fake"])


def test_predictions_of_another_shard_set_or_view_are_refused(predicted, tmp_path, capsys):
    other = tmp_path / "other"
    write_shard_set(other, train_examples=64, test_examples=96, shard_size=32, seed=5)
    full = predicted / "full" / "predictions.parquet"
    assert main(["evaluate", "--shards", str(other), "--predictions", str(full), "--out", str(tmp_path / "a")]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"realfake evaluate: error: {full} holds predictions for shard set ")
    assert line.endswith(": predict again") and not (tmp_path / "a").exists()
    shards = str(predicted / "shards")
    # The ivar_only CNN's predictions given as the full CNN's.
    ivar_only = predicted / "ivar_only" / "predictions.parquet"
    assert main(["evaluate", "--shards", shards, "--predictions", str(ivar_only), "--out", str(tmp_path / "b")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"realfake evaluate: error: {ivar_only} holds predictions of a model of view ivar_only, not full"
    )
    assert main(["evaluate", "--shards", shards, "--predictions", str(full), "--audit", f"ring_only={ivar_only}",
                 "--out", str(tmp_path / "c")]) == 2  # fmt: skip
    assert capsys.readouterr().err.strip() == (
        f"realfake evaluate: error: {ivar_only} holds predictions of a model of view ivar_only, not ring_only"
    )
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_the_breakdowns_bin_by_detection_and_by_distance_to_no_coverage():
    from realfake.stats.breakdowns import breakdown_variables, breakdowns

    rng = np.random.default_rng(4)
    labels = np.repeat([0, 1], 400)
    detected = np.ones(800, dtype=bool)
    detected[700:] = False
    distance = rng.uniform(0, 64, 800)
    table = pd.DataFrame({"label": labels, "detected": detected, "distance_to_no_coverage": distance})
    table["p_fake"] = np.where(detected, 0.5, 0.9)  # only the undetected fakes look fake
    variables = breakdown_variables(table)
    assert variables["detected"].tolist() == ["detected"] * 700 + ["undetected"] * 100
    np.testing.assert_array_equal(variables["distance to no coverage"], distance)
    rows = breakdowns(table, SETTINGS)
    by_bin = rows[rows["breakdown"] == "detected"].set_index("bin")
    assert by_bin.loc["detected", "examples"] == 700 and by_bin.loc["undetected", "fake"] == 100
    assert len(rows[rows["breakdown"] == "distance to no coverage"]) == SETTINGS.bins


def test_a_difference_with_no_view_audited_is_not_called_no_difference():
    rng = np.random.default_rng(6)
    labels = rng.permutation(np.arange(1000) % 2)
    predictions = pd.DataFrame({"label": labels, "detected": True})
    records = audit_records(labels, {"full": _scores(rng, labels, 2.0)}, predictions, SETTINGS)
    assert records[0]["outcome"] == "distinguishable" and audit_cause(records) == "none"
    sentence = audit_sentence("none", records)
    assert sentence.startswith("The full CNN finds a difference that the placement columns do not explain")
    assert "evaluate.audit" in sentence


def test_a_prediction_scattered_in_parts_gathers_to_the_single_run(predicted, tmp_path, capsys):
    """Three test shards in two parts (1 and 2 shards) and in three (one each): the parts, read together in
    any order, are the single run's predictions, and evaluate gives the same metrics from them."""
    shards, model = str(predicted / "shards"), str(predicted / "full.keras")
    shard_set = open_shard_set(predicted / "shards")
    assert len(shard_set.test) == 3
    single = read_predictions(predicted / "full" / "predictions.parquet", shard_set, view="full")
    for count in (2, 3):
        paths = [tmp_path / f"{index}-of-{count}.parquet" for index in range(1, count + 1)]
        for index, path in enumerate(paths, start=1):
            arguments = ["predict", "--shards", shards, "--model", model, "--part", f"{index}-of-{count}"]
            assert main([*arguments, "--out", str(path)]) == 0
        gathered = read_predictions(list(reversed(paths)), shard_set, view="full")
        pd.testing.assert_frame_equal(gathered, single)
    parts = [str(tmp_path / f"{index}-of-3.parquet") for index in (1, 2, 3)]
    assert main(["evaluate", "--shards", shards, "--predictions", *parts, "--out", str(tmp_path / "parts"),
                 "--bootstrap", "100"]) == 0  # fmt: skip
    assert main(["evaluate", "--shards", shards, "--predictions", str(predicted / "full" / "predictions.parquet"),
                 "--out", str(tmp_path / "single"), "--bootstrap", "100"]) == 0  # fmt: skip
    by_parts = json.loads((tmp_path / "parts" / "metrics.json").read_text())
    by_single = json.loads((tmp_path / "single" / "metrics.json").read_text())
    assert by_parts["verdict"] == by_single["verdict"] and by_parts["breakdowns"] == by_single["breakdowns"]
    capsys.readouterr()
    # A missing part is named, not evaluated.
    assert main(["evaluate", "--shards", shards, "--predictions", parts[0], parts[2], "--out",
                 str(tmp_path / "missing")]) == 2  # fmt: skip
    assert "do not cover the test shards" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()
    assert (
        main(["predict", "--shards", shards, "--model", model, "--part", "4-of-3", "--out", str(tmp_path / "x")]) == 2
    )
    assert "part '4-of-3' is not I-of-N with 1 <= I <= N" in capsys.readouterr().err


def test_the_audit_views_count_the_test_bricks():
    rng = np.random.default_rng(61)
    labels = np.tile(np.repeat([0, 1], 50), 30)
    predictions = pd.DataFrame({"label": labels, "brickname": np.repeat([f"{n:04d}p000" for n in range(30)], 100)})
    records = audit_records(labels, {"full": _scores(rng, labels, 1.0)}, predictions, SETTINGS)
    assert records[0]["bricks"] == 30 and records[0]["interval"] == "cluster"


def test_the_audit_of_a_cross_fitted_run_compares_within_folds():
    # Two folds whose models rank well but on different scales, fold 0's fakes-heavy and scored low: pooled,
    # the full CNN's fakes look real; within folds it finds them, and its paired comparison with the placement
    # column is within folds too.
    rng = np.random.default_rng(62)
    fold = np.repeat([0, 1], 1000)
    labels = np.concatenate([rng.uniform(size=1000) < 0.8, rng.uniform(size=1000) < 0.2]).astype(int)
    probability = _scores(rng, labels, 2.0)
    scores = np.where(fold == 0, 0.3 * probability, 0.7 + 0.3 * probability)
    predictions = pd.DataFrame({"label": labels, "fold": fold, "distance_to_no_coverage": rng.uniform(0, 64, 2000)})
    records = audit_records(labels, {"full": scores}, predictions, SETTINGS)
    full = records[0]
    assert full["auc"] > 0.8 and full["outcome"] == "distinguishable"
    assert full["paired"]["distance_to_no_coverage"]["significant"]
    pooled = audit_records(labels, {"full": scores}, predictions.drop(columns="fold"), SETTINGS)[0]
    assert pooled["auc"] < 0.5
    assert audit_cause(records) == "none" and audit_sentence("none", records).startswith("The full CNN finds")
