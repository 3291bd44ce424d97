"""realfake report: mosaic pairing, galleries, history reading, the HTML page and its rendering in Chromium."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.synthetic_shards import save_model, write_shard_set

from realfake.cli import main
from realfake.conventions import PIXEL_BINS
from realfake.errors import RealfakeError
from realfake.evaluation.attribution import attribution_maps
from realfake.evaluation.evaluate import evaluate_predictions
from realfake.evaluation.pixels import pixel_statistics, summary_record
from realfake.formats.evaluation import ATTRIBUTION_NAME, MEAN_STAMPS_NAME, write_evaluation
from realfake.formats.evaluation import surest_mistakes as gallery_positions
from realfake.formats.model import read_model
from realfake.formats.sensitivity import write_sensitivity_table
from realfake.formats.shardset import open_shard_set
from realfake.report import BRIGHTNESS_PERCENTILES, mosaic_pairs, read_history
from realfake.report.figures import colour_composite
from realfake.report.page import PageContent, attribution_section
from realfake.stats.settings import StatisticsSettings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# -- selections -------------------------------------------------------------------------------


def test_mosaic_pairs_alternate_real_and_fake_matched_in_magnitude():
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat([0, 1], 300))
    magnitudes = rng.uniform(20.0, 25.0, labels.size)
    magnitudes[5] = np.nan
    for percentile in BRIGHTNESS_PERCENTILES:
        pairs = mosaic_pairs(magnitudes, labels, percentile, 4)
        assert len(pairs) == 4
        reals = [real for real, _ in pairs]
        fakes = [fake for _, fake in pairs]
        assert all(labels[real] == 0 for real in reals) and all(labels[fake] == 1 for fake in fakes)
        assert len(set(fakes)) == 4 and len(set(reals)) == 4
        differences = [abs(magnitudes[real] - magnitudes[fake]) for real, fake in pairs]
        assert max(differences) < 0.1
        target = np.nanpercentile(magnitudes, 100 - percentile)
        assert all(abs(magnitudes[real] - target) < 0.15 for real in reals)
        assert [magnitudes[real] for real in reals] == sorted(magnitudes[real] for real in reals)
    bright = mosaic_pairs(magnitudes, labels, 99, 4)
    faint = mosaic_pairs(magnitudes, labels, 1, 4)
    assert max(magnitudes[real] for real, _ in bright) < 20.2
    assert min(magnitudes[real] for real, _ in faint) > 24.8


def test_mosaic_pairs_use_distinct_fakes_even_when_one_fake_is_closest_to_all():
    magnitudes = np.array([22.0, 22.1, 22.2, 22.1, 30.0, 31.0])
    labels = np.array([0, 0, 0, 1, 1, 1])
    pairs = mosaic_pairs(magnitudes, labels, 50, 3)
    assert sorted(fake for _, fake in pairs) == [3, 4, 5]
    assert dict(pairs)[1] == 3  # the optimal assignment gives the closest fake to the middle real


def test_galleries_are_the_surest_mistakes():
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.2, 0.95, 0.6, 0.1, 0.9, 0.4])
    assert gallery_positions(labels, scores, 0, 2) == [1, 2]
    assert gallery_positions(labels, scores, 1, 2) == [3, 5]


def test_read_history_reads_the_training_record_and_refuses_other_json(tmp_path):
    path = tmp_path / "history.json"
    epochs = [
        {"epoch": 1, "global_step": 12, "train_loss": 0.7, "train_accuracy": 0.5, "validation_loss": 0.69,
         "validation_accuracy": 0.52},
        {"epoch": 2, "global_step": 24, "train_loss": 0.6, "train_accuracy": 0.6, "validation_loss": None,
         "validation_accuracy": None},
    ]  # fmt: skip
    path.write_text(json.dumps({"selected_epoch": 2, "shard_set": "0123456789abcdef", "epochs": epochs}))
    history = read_history(path)
    assert history.columns.tolist() == ["epoch", "train_loss", "train_accuracy", "validation_loss",
                                        "validation_accuracy"]  # fmt: skip
    assert history["epoch"].tolist() == [1, 2] and history["train_loss"].tolist() == [0.7, 0.6]
    assert history["validation_accuracy"].iloc[0] == 0.52
    assert history[["validation_loss", "validation_accuracy"]].iloc[1].isna().all()  # no validation split: null
    # A list of epochs and a Keras History dict are what nothing here writes: refused, naming the file.
    for other in ([{"loss": 0.5, "val_accuracy": 0.55}], {"loss": [0.9, 0.8], "val_loss": [1.0, 0.95]}):
        path.write_text(json.dumps(other))
        with pytest.raises(RealfakeError) as error:
            read_history(path)
        assert str(error.value) == (
            f"{path}: not a `realfake train` history (a JSON object whose 'epochs' is a list of objects)"
        )


def test_colour_composite_is_rgb_for_grz_and_grey_for_fewer_bands():
    stamp = np.zeros((8, 8, 3), dtype=np.float32)
    stamp[4, 4] = [0.0, 0.0, 1.0]  # only z: red
    rgb = colour_composite(stamp, ("g", "r", "z"))
    assert rgb.shape == (8, 8, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert rgb[4, 4, 0] > rgb[4, 4, 1] and rgb[4, 4, 0] > rgb[4, 4, 2]
    grey = colour_composite(stamp[..., :2] + 0.5, ("g", "r"))
    assert np.allclose(grey[..., 0], grey[..., 1]) and np.allclose(grey[..., 0], grey[..., 2])


# -- the report -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A report made from synthetic shards, a synthetic evaluation (the CNN sees bright galaxies) and a history."""
    root = tmp_path_factory.mktemp("report")
    shards = root / "shards"
    manifest = write_shard_set(shards, train_examples=100, test_examples=200, shard_size=64)
    test = pd.read_parquet(shards / "test_catalog.parquet")
    train = pd.read_parquet(shards / "train_catalog.parquet")
    rng = np.random.default_rng(1)
    scores = rng.uniform(0.0, 1.0, len(test))
    bright = test["mag_dered_g"].to_numpy() < 21.0
    scores[bright] = np.where(test["label"].to_numpy()[bright] == 1, 0.97, 0.03)
    test["p_fake"] = scores
    metrics = evaluate_predictions(test, StatisticsSettings(bootstrap=100), train=train)
    metrics["shard_set"] = manifest["identity"]
    # The pixel statistics and attribution maps as realfake evaluate makes them (a small model, not a trained one).
    save_model(root / "model.keras", manifest)
    shard_set = open_shard_set(shards)
    model = read_model(root / "model.keras")
    arrays = {
        MEAN_STAMPS_NAME: pixel_statistics(shard_set),
        ATTRIBUTION_NAME: attribution_maps(model, shard_set, test["label"].to_numpy(), scores),
    }
    metrics["pixels"] = summary_record(arrays[MEAN_STAMPS_NAME])
    write_evaluation(root / "evaluate", test, metrics, arrays)
    (root / "train").mkdir()
    epochs = [
        {"epoch": epoch, "train_loss": 0.7 / epoch, "train_accuracy": 0.5 + 0.05 * epoch, "validation_loss": 0.7}
        for epoch in range(1, 5)
    ]
    (root / "train" / "history.json").write_text(json.dumps({"shard_set": manifest["identity"], "epochs": epochs}))
    out = root / "report"
    status = main(
        [
            "report",
            "--evaluate",
            str(root / "evaluate"),
            "--shards",
            str(shards),
            "--train",
            str(root / "train"),
            "--out",
            str(out),
        ]
    )
    assert status == 0
    return {"root": root, "out": out, "test": test, "metrics": metrics, "identity": manifest["identity"]}


def test_report_writes_every_figure_and_the_page_references_only_existing_files(report):
    out = report["out"]
    expected = {
        "training_curves.png",
        "roc.png",
        "accuracy_vs_g.png",
        "breakdowns.png",
        "gallery_real_called_fake.png",
        "gallery_fake_called_real.png",
        *(f"mosaic_p{percentile:02d}.png" for percentile in BRIGHTNESS_PERCENTILES),
        *(f"{name}_{index}.png" for name in ("mean_difference", "radial_profile") for index in range(PIXEL_BINS)),
        "attribution.png",
        "fake_parameters.png",
    }
    assert expected <= {path.name for path in out.iterdir()}
    page = (out / "index.html").read_text()
    sources = re.findall(r'<img[^>]*\ssrc="([^"]+)"', page)
    assert set(sources) == expected
    references = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert all(not reference.startswith(("http:", "https:", "//", "/")) for reference in references)
    assert all((out / reference).is_file() for reference in references)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    for path in out.glob("*.png"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*tmp*"))


def test_report_page_states_the_verdict_baselines_and_flagged_bins(report):
    page = (report["out"] / "index.html").read_text()
    metrics = report["metrics"]
    assert metrics["verdict"]["sentence"].replace("&", "&amp;") in page
    assert metrics["shortcut_sentence"] in page
    assert "gradient boosting on catalog quantities" in page
    assert metrics["correction"] in page
    flagged = sum(record["flagged"] for record in metrics["breakdowns"])
    assert flagged >= 1  # the bright bin
    assert page.count('<tr class="flagged">') >= flagged


def test_mosaic_has_eight_rows_like_figure_1(report):
    from matplotlib.image import imread

    image = imread(report["out"] / "mosaic_p50.png")
    gallery = imread(report["out"] / "gallery_real_called_fake.png")
    height, width = image.shape[:2]
    # 8 rows of 1-inch panels plus margins, 7 columns (composite, g, r, z, ivar g, r, z) at 100 dpi
    assert 880 <= height <= 960
    assert 850 <= width <= 920
    assert gallery.shape[:2] == image.shape[:2]  # the gallery shows 8 galaxies with the same columns


def test_report_renders_in_headless_chromium_with_every_image_loaded(report, tmp_path):
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's chromium package (apt-get install -y chromium) to run this test"
        )
    index = report["out"] / "index.html"
    images = len(re.findall(r"<img\s", index.read_text()))
    result = subprocess.run(
        [
            str(CHROMIUM),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            index.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r'<body[^>]*data-images-loaded="(\d+)/(\d+)"', result.stdout)
    assert match, "the page's load script did not run: " + result.stdout[:500]
    assert (int(match.group(1)), int(match.group(2))) == (images, images)
    # 11 of the verdict, breakdowns, mosaics and galleries; per magnitude bin a mean-stamp and a profile figure;
    # the attribution and the fake parameters.
    assert images == 11 + 2 * PIXEL_BINS + 2
    screenshot = tmp_path / "page.png"
    subprocess.run(
        [
            str(CHROMIUM),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile-shot'}",
            f"--screenshot={screenshot}",
            "--window-size=1200,3000",
            index.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_of_a_missing_evaluation_is_one_line_and_exit_2(tmp_path, capsys):
    status = main(
        [
            "report",
            "--evaluate",
            str(tmp_path / "nothing"),
            "--shards",
            str(tmp_path),
            "--train",
            str(tmp_path),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert status == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"realfake report: error: {tmp_path / 'nothing' / 'predictions.parquet'} is missing "
        "(run `realfake evaluate` first)"
    ]


def test_report_refuses_an_evaluation_of_another_shard_set(report, tmp_path, capsys):
    other = tmp_path / "other"
    other_identity = write_shard_set(other, train_examples=8, test_examples=10)["identity"]
    root = report["root"]
    status = main(
        [
            "report",
            "--evaluate",
            str(root / "evaluate"),
            "--shards",
            str(other),
            "--train",
            str(root / "train"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert status == 2
    assert capsys.readouterr().err.strip() == (
        f"realfake report: error: {root / 'evaluate' / 'metrics.json'} was made from shard set "
        f"{report['identity'][:12]}, but {other} is shard set {other_identity[:12]}: "
        f"run `realfake evaluate` on these shards first"
    )
    assert not (tmp_path / "o").exists()
    shutil.rmtree(other)


def test_report_refuses_a_training_history_of_another_shard_set(report, tmp_path, capsys):
    root = report["root"]
    train = tmp_path / "train"
    train.mkdir()
    record = json.loads((root / "train" / "history.json").read_text())
    (train / "history.json").write_text(json.dumps({**record, "shard_set": "0123456789abcdef"}))
    status = main(
        ["report", "--evaluate", str(root / "evaluate"), "--shards", str(root / "shards"), "--train", str(train),
         "--out", str(tmp_path / "o")]
    )  # fmt: skip
    assert status == 2
    assert capsys.readouterr().err.strip() == (
        f"realfake report: error: {train / 'history.json'} was made from shard set 0123456789ab, but "
        f"{root / 'shards'} is shard set {report['identity'][:12]}: run `realfake train` on these shards first"
    )
    assert not (tmp_path / "o").exists()


def _sensitivity_rows() -> list[dict]:
    rows = []
    for bricks, examples in ((4, 376), (16, 1538)):
        for mismatch, strengths in (("size", (1.0, 1.25, 2.0)), ("psf", (1.0, 0.5, 0.0))):
            for strength in strengths:
                error = abs(strength - 1.0)
                auc = 0.5 + 0.4 * error
                rows.append({"bricks": bricks, "mismatch": mismatch, "strength": strength, "examples": examples,
                             "auc": auc, "auc_low": auc - 0.05, "auc_high": auc + 0.05,
                             "auc_p_value": 0.3 if error == 0 else 1e-6,
                             "outcome": "inconclusive" if error == 0 else "distinguishable",
                             "minimum_detectable_auc": 0.574 if bricks == 4 else 0.536, "seconds": 100.0})  # fmt: skip
    return rows


def test_the_report_shows_a_sensitivity_table_when_given_one(report, tmp_path):
    table = tmp_path / "sensitivity.csv"
    write_sensitivity_table(_sensitivity_rows(), table)
    root, out = report["root"], tmp_path / "report"
    arguments = ["report", "--evaluate", str(root / "evaluate"), "--shards", str(root / "shards"), "--train",
                 str(root / "train"), "--out", str(out)]  # fmt: skip
    assert main([*arguments, "--sensitivity-table", str(table)]) == 0
    page = (out / "index.html").read_text()
    assert "<h2>What the test can see</h2>" in page
    assert 'src="sensitivity.png"' in page and (out / "sensitivity.png").stat().st_size > 10_000
    assert page.count("<td>size</td>") == 6 and page.count("<td>psf</td>") == 6
    assert "What the test can see" not in (report["out"] / "index.html").read_text()  # none given: none shown


def test_a_sensitivity_table_without_its_columns_is_refused_naming_them(report, tmp_path, capsys):
    table = tmp_path / "sensitivity.csv"
    write_sensitivity_table(_sensitivity_rows(), table)
    # Two columns cut out of the written table.
    pd.read_csv(table, dtype=str).drop(columns=["outcome", "auc_low"]).to_csv(table, index=False)
    root = report["root"]
    status = main(["report", "--evaluate", str(root / "evaluate"), "--shards", str(root / "shards"), "--train",
                   str(root / "train"), "--out", str(tmp_path / "o"), "--sensitivity-table", str(table)])  # fmt: skip
    assert status == 2
    assert capsys.readouterr().err.strip() == (
        f"realfake report: error: sensitivity table {table} has no column(s) auc_low, outcome"
    )


# -- inputs checked before anything is written; the report directory replaced whole -------------------------------


def report_arguments(report, evaluate: Path, out: Path, *extra: str) -> list[str]:
    root = report["root"]
    return ["report", "--evaluate", str(evaluate), "--shards", str(root / "shards"), "--train", str(root / "train"),
            "--out", str(out), *extra]  # fmt: skip


def write_evaluation_like(report, directory: Path, metrics: dict, arrays: tuple[str, ...]) -> Path:
    """The fixture's evaluation with other ``metrics``, written by realfake evaluate's writer; ``arrays``: which of
    the fixture's .npz files it writes (and metrics.json lists)."""
    contents = {}
    for name in arrays:
        with np.load(report["root"] / "evaluate" / name) as stored:
            contents[name] = {key: stored[key] for key in stored.files}
    write_evaluation(directory, report["test"], metrics, contents)
    return directory


def one_error_line(capsys) -> str:
    stderr = capsys.readouterr().err
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def file_digests(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda metrics: metrics.pop("verdict"), "has no 'verdict' section"),
        (lambda metrics: metrics["verdict"].pop("tolerance"), "has no 'verdict.tolerance' key"),
        (lambda metrics: metrics["baselines"][1].pop("p_adjusted"), "has no 'baselines[1].p_adjusted' key"),
    ],
    ids=["no verdict", "verdict without tolerance", "baseline without p_adjusted"],
)
def test_metrics_without_what_the_report_reads_are_refused_naming_the_key(report, tmp_path, capsys, change, problem):
    metrics = copy.deepcopy(report["metrics"])
    change(metrics)
    evaluate = write_evaluation_like(report, tmp_path / "evaluate", metrics, (MEAN_STAMPS_NAME, ATTRIBUTION_NAME))
    assert main(report_arguments(report, evaluate, tmp_path / "out")) == 2
    assert one_error_line(capsys) == (
        f"realfake report: error: {evaluate / 'metrics.json'} {problem}: run `realfake evaluate` again"
    )
    assert not (tmp_path / "out").exists()


def test_mean_stamps_that_metrics_lists_but_are_missing_are_refused(report, tmp_path, capsys):
    evaluate = shutil.copytree(report["root"] / "evaluate", tmp_path / "evaluate")
    (evaluate / MEAN_STAMPS_NAME).unlink()
    assert main(report_arguments(report, evaluate, tmp_path / "out")) == 2
    assert one_error_line(capsys) == (
        f"realfake report: error: {evaluate / MEAN_STAMPS_NAME} is missing, but {evaluate / 'metrics.json'} lists "
        "it (files.arrays): run `realfake evaluate` again"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda rows: rows[2].update(auc="high"), ": row 3 (line 4), column auc: 'high' is not a number"),
        (lambda rows: rows[0].update(examples=""), ": row 1 (line 2), column examples: '' is not a whole number"),
        (lambda rows: rows.clear(), " has a header but no rows"),
    ],
    ids=["a word for a number", "an empty count", "no rows"],
)
def test_a_malformed_sensitivity_table_is_refused_naming_the_column_and_row(report, tmp_path, capsys, damage, problem):
    rows = _sensitivity_rows()
    damage(rows)
    table = tmp_path / "sensitivity.csv"
    write_sensitivity_table(rows, table)
    arguments = report_arguments(
        report, report["root"] / "evaluate", tmp_path / "out", "--sensitivity-table", str(table)
    )
    assert main(arguments) == 2
    assert one_error_line(capsys) == f"realfake report: error: sensitivity table {table}{problem}"
    assert not (tmp_path / "out").exists()


def test_a_missing_sensitivity_table_writes_nothing_and_leaves_the_old_report(report, tmp_path, capsys):
    old = shutil.copytree(report["out"], tmp_path / "old")
    (old / "roc.png").write_bytes(b"the previous run's figure")
    before = file_digests(old)
    missing = tmp_path / "sensitivity.csv"
    for out in (tmp_path / "new", old):
        arguments = report_arguments(report, report["root"] / "evaluate", out, "--sensitivity-table", str(missing))
        assert main(arguments) == 2
        assert one_error_line(capsys) == (
            f"realfake report: error: sensitivity table {missing} does not exist (scripts/sensitivity.py writes one)"
        )
    assert not (tmp_path / "new").exists()
    assert file_digests(old) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["old"]


def test_a_directory_holding_other_files_is_not_replaced_by_a_report(report, tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(report_arguments(report, report["root"] / "evaluate", out)) == 2
    assert one_error_line(capsys) == (
        f"realfake report: error: {out} holds notes.txt, which a report does not write: it is not replaced; "
        "give --out a directory of its own"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results"]
    assert [path.name for path in out.iterdir()] == ["notes.txt"]


STORAGE_SENTENCE = "3 pixel(s) of the test stamps were clipped to float16's range (65504) when the shards were written."


def test_a_rerun_replaces_the_report_whole_and_says_what_evaluate_did_not_make(report, tmp_path):
    """metrics.json from a float16 shard set (its storage sentence) without pixel maps; the old report in the output
    directory has files the new one does not write."""
    metrics = {**report["metrics"], "storage": {"dtype": "float16", "clipped": 3, "sentence": STORAGE_SENTENCE}}
    evaluate = write_evaluation_like(report, tmp_path / "evaluate", metrics, (ATTRIBUTION_NAME,))
    out = shutil.copytree(report["out"], tmp_path / "report")
    (out / "sensitivity.png").write_bytes(b"a figure of an earlier run")
    assert main(report_arguments(report, evaluate, out)) == 0
    page = (out / "index.html").read_text()
    sources = set(re.findall(r'<img[^>]*\ssrc="([^"]+)"', page))
    assert {path.name for path in out.iterdir()} == sources | {"index.html"}  # nothing of the old run survives
    assert not any(name.startswith(("mean_difference", "radial_profile")) for name in sources)
    assert "attribution.png" in sources
    assert f'<p class="verdict">{STORAGE_SENTENCE}</p>' in page.replace("&#x27;", "'")
    assert "<h2>The difference in pixels</h2>" in page
    assert f"realfake evaluate made no pixel maps for this evaluation: {MEAN_STAMPS_NAME} is not among" in page
    assert sorted(path.name for path in tmp_path.iterdir()) == ["evaluate", "report"]


def test_a_report_of_an_evaluation_with_attribution_switched_off_says_so(report, tmp_path):
    """evaluate.attribution false (metrics.json: settings.attribution, no attribution.npz): no attribution figure,
    and the page says the maps were switched off, not that a model was missing."""
    metrics = {**report["metrics"], "settings": {"model": "model.keras", "attribution": False}}
    evaluate = write_evaluation_like(report, tmp_path / "evaluate", metrics, (MEAN_STAMPS_NAME,))
    out = tmp_path / "report"
    assert main(report_arguments(report, evaluate, out)) == 0
    assert not (out / "attribution.png").exists()
    page = " ".join((out / "index.html").read_text().split())
    assert "<h2>What the CNN looks at</h2>" in page
    assert "made no attribution maps for this evaluation: they were switched off by evaluate.attribution" in page
    assert "only when it is given the model" not in page


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"model": "model.keras", "attribution": False}, "they were switched off by evaluate.attribution"),
        ({"model": None, "attribution": True}, "It makes them only when it is given the model (--model)"),
        ({}, "It makes them only when it is given the model (--model)"),  # metrics of an older evaluate
    ],
    ids=["switched off", "no model", "older metrics"],
)
def test_the_attribution_section_gives_the_reason_the_maps_are_missing(settings, reason):
    content = PageContent({"settings": settings}, pd.DataFrame(), {}, [], [], np.array([]), ("g", "r", "z"))
    section = " ".join(" ".join(attribution_section(content)).split())
    assert section.startswith("<h2>What the CNN looks at</h2>")
    assert reason in section
    assert ("switched off" in section) == (settings.get("attribution") is False)
