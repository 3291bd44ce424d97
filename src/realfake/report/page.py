"""The report's one HTML page: a function per section (ten, in :func:`render_html`'s order), the prose from
``text/*.html``.

The page has no external resource (inline CSS, images by relative path), so it
opens from disk with no network. A short inline script records on ``<body>``
(``data-images-loaded="loaded/total"``) how many images loaded, for the
headless-browser test.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.formats.evaluation import ATTRIBUTION_NAME, MEAN_STAMPS_NAME, METRICS_NAME, baseline_title
from realfake.report import markup
from realfake.stats import corrections
from realfake.stats.verdict import OUTCOME_WORDS

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
.verdict { font-size: 1.2em; padding: .8em 1em; border-left: 6px solid #888; background: #f5f5f5; }
.verdict.distinguishable { border-color: #d62728; } .verdict.within_tolerance { border-color: #ff7f0e; }
.verdict.indistinguishable { border-color: #2ca02c; } .verdict.inconclusive { border-color: #888; }
.outcome { font-weight: 600; text-transform: uppercase; letter-spacing: .05em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f0f0f0; } td.text, th.text { text-align: left; }
tr.flagged td { background: #fde2e2; font-weight: 600; }
figure { margin: 1em 0; } figcaption { font-size: .9em; color: #555; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.note { font-size: .9em; color: #444; }
"""

IMAGES_LOADED_SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (image) { return image.complete && image.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images-loaded", loaded + "/" + images.length);
});
"""


@dataclass(frozen=True)
class PageContent:
    """What the page shows: the evaluation's metrics and breakdown table, the figures written (by key), the
    mosaics ((percentile, path, pairs)), the galleries ((title, path)), the test examples' magnitudes, the bands,
    optionally a sensitivity table, and the figures of the difference in pixels (section -> paths)."""

    metrics: dict
    table: pd.DataFrame
    figures: dict[str, Path]
    mosaics: list
    galleries: list
    magnitudes: np.ndarray
    bands: Sequence[str]
    sensitivity: pd.DataFrame | None = None
    pixels: dict[str, list[Path]] = field(default_factory=dict)


def prose(name: str, **values: str) -> str:
    """The paragraph ``text/<name>.html`` (HTML), with ``{placeholders}`` filled by ``values``."""
    text = resources.files("realfake.report").joinpath("text", f"{name}.html").read_text(encoding="utf-8")
    return " ".join(text.split()).format(**values)


def render_html(content: PageContent) -> str:
    """The report page; images by file name (they sit next to ``index.html``)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>realfake: do the fakes look real?</title>",
        f"<style>{CSS}</style>",
        f"<script>{IMAGES_LOADED_SCRIPT}</script>",
        "</head><body>",
        "<h1>Do the fake galaxies look real?</h1>",
    ]
    for section in (
        verdict_section,
        audit_section,
        pixels_section,
        attribution_section,
        fake_parameters_section,
        sensitivity_section,
        baselines_section,
        breakdowns_section,
        mosaics_section,
        galleries_section,
    ):
        parts += section(content)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# -- sections ---------------------------------------------------------------------------------


def verdict_section(content: PageContent) -> list[str]:
    metrics, verdict = content.metrics, content.metrics["verdict"]
    outcome = verdict.get("outcome", "")
    parts = [
        f'<p class="verdict {html.escape(outcome)}"><span class="outcome">'
        f"{html.escape(OUTCOME_WORDS.get(outcome, ''))}</span>: {html.escape(verdict['sentence'])}</p>",
        f'<p class="verdict">{html.escape(metrics.get("shortcut_sentence", ""))}</p>',
    ]
    # How the shards stored the stamps, where it changed what the CNN saw (float16 clipping); older metrics lack it.
    # A difference the kernel test on the central pixels finds and the CNN does not belongs beside the verdict.
    mmd = metrics.get("mmd") or {}
    if mmd.get("beyond_cnn"):
        parts.append(f'<p class="verdict">{html.escape(mmd["sentence"])}</p>')
    storage = (metrics.get("storage") or {}).get("sentence")
    if storage:
        parts.append(f'<p class="verdict">{html.escape(storage)}</p>')
    parts += [
        "<h2>The verdict</h2>",
        markup.note(prose("verdict")),
        markup.table(["quantity", "value"], _verdict_rows(verdict)),
    ]
    for key in ("training_curves", "roc"):
        if key in content.figures:
            parts.append(markup.image(content.figures[key], key.replace("_", " "), prose(key)))
    return parts


def audit_section(content: PageContent) -> list[str]:
    records = content.metrics.get("audit") or []
    if not records:
        return []
    rows = [
        [record["view"], markup.interval(record, "auc"), OUTCOME_WORDS.get(record.get("outcome"), "")]
        for record in records
    ]
    classes = ["flagged" if record.get("outcome") == "distinguishable" else "" for record in records]
    return [
        "<h2>Where the difference lies</h2>",
        f'<p class="verdict">{html.escape(content.metrics.get("audit_sentence", ""))}</p>',
        markup.note(prose("audit")),
        markup.table(["view or column", "AUC [interval]", "outcome"], rows, classes),
    ]


def pixels_section(content: PageContent) -> list[str]:
    record = content.metrics.get("pixels") or {}
    if not content.pixels.get("mean_difference"):
        return [
            "<h2>The difference in pixels</h2>",
            markup.note(prose("pixels_absent", **_array_names(MEAN_STAMPS_NAME))),
        ]
    parts = ["<h2>The difference in pixels</h2>", markup.note(prose("pixels", column=str(record.get("column", ""))))]
    bins = record.get("bins", [])
    passed = sum(sum(entry["significant_pixels"].values()) for entry in bins)
    parts.append(
        f'<p class="verdict">{passed} pixel(s) of the significance maps pass the Bonferroni threshold '
        f"|z| &gt; {markup.number(record.get('bonferroni_z'), 2)} (over every pixel, channel and magnitude bin; "
        "by chance alone none does with probability 0.95).</p>"
    )
    for index, (difference, profile) in enumerate(
        zip(content.pixels["mean_difference"], content.pixels.get("radial_profile", []))
    ):
        label = _bin_label(bins, index, str(record.get("column", "magnitude")))
        parts.append(f"<h3>{html.escape(label)}</h3>")
        parts.append(markup.image(difference, f"mean stamps, {label}", prose("mean_difference")))
        parts.append(markup.image(profile, f"radial profiles, {label}", prose("radial_profile")))
    return parts


def attribution_section(content: PageContent) -> list[str]:
    if not content.pixels.get("attribution"):
        return ["<h2>What the CNN looks at</h2>", markup.note(_attribution_absent(content.metrics))]
    return [
        "<h2>What the CNN looks at</h2>",
        markup.image(content.pixels["attribution"][0], "attribution maps", prose("attribution")),
    ]


def fake_parameters_section(content: PageContent) -> list[str]:
    records = content.metrics.get("fake_parameters") or []
    if not records:
        return []
    parts = ["<h2>Which fakes look fake</h2>", markup.note(prose("fake_parameters", correction=_correction(content)))]
    if content.pixels.get("fake_parameters"):
        parts.append(
            markup.image(
                content.pixels["fake_parameters"][0], "AUC against injected parameters", prose("fake_parameters_figure")
            )
        )
    flagged = [record for record in records if record.get("flagged")]
    if flagged:
        rows = [
            [record["parameter"], record["bin"], str(record["fakes"]), record.get("compared_with", ""),
             markup.interval(record, "auc"), corrections.format_p(markup.to_float(record["p_adjusted"])),
             OUTCOME_WORDS.get(record.get("outcome"), "")]
            for record in flagged
        ]  # fmt: skip
        parts.append("<h3>Bins where the fakes look fake (significant after correction)</h3>")
        header = ["parameter", "bin", "fakes", "compared with", "AUC [interval]", "adjusted p", "outcome"]
        parts.append(markup.table(header, rows, ["flagged"] * len(rows)))
    most = content.metrics.get("most_fake_looking") or []
    if most:
        columns = list(most[0])
        parts.append(f"<h3>The {len(most)} fakes the CNN finds most fake-looking</h3>")
        parts.append(markup.table(columns, [[_cell(record.get(column)) for column in columns] for record in most]))
    return parts


def _bin_label(bins: list[dict], index: int, column: str) -> str:
    if index >= len(bins):
        return f"magnitude bin {index}: no test examples"
    entry = bins[index]
    return (
        f"{column} {entry['low']:.2f} to {entry['high']:.2f} ({entry['real']} real, {entry['fake']} fake test stamps)"
    )


def _cell(value) -> str:
    if isinstance(value, float):
        return markup.number(value, 3)
    return "" if value is None else str(value)


def sensitivity_section(content: PageContent) -> list[str]:
    if content.sensitivity is None:
        return []
    parts = ["<h2>What the test can see</h2>", markup.note(prose("sensitivity"))]
    if "sensitivity" in content.figures:
        parts.append(
            markup.image(content.figures["sensitivity"], "sensitivity", "AUC with its interval against strength.")
        )
    rows = [
        [
            str(row["bricks"]),
            str(row["mismatch"]),
            f"{row['strength']:g}",
            str(row["examples"]),
            markup.interval(row, "auc"),
            corrections.format_p(markup.to_float(row["auc_p_value"])),
            OUTCOME_WORDS.get(row["outcome"], str(row["outcome"])),
            markup.number(row["minimum_detectable_auc"]),
        ]
        for row in content.sensitivity.to_dict(orient="records")
    ]
    header = ["mock bricks", "mismatch", "strength", "test examples", "AUC [interval]", "p", "outcome",
              "minimum detectable AUC"]  # fmt: skip
    return parts + [markup.table(header, rows)]


def baselines_section(content: PageContent) -> list[str]:
    parts = ["<h2>Shortcut baselines</h2>", *_mmd_paragraphs(content.metrics.get("mmd"))]
    baselines = content.metrics.get("baselines", [])
    if not baselines:
        return parts + ["<p>No shortcut baselines were run.</p>"]
    parts.append(markup.note(prose("baselines", correction=_correction(content))))
    rows, classes = [], []
    for record in baselines:
        comparison = record.get("cnn_vs_baseline", {})
        rows.append(
            [
                baseline_title(record),
                markup.interval(record, "auc"),
                corrections.format_p(record["p_adjusted"]),
                markup.interval(record, "accuracy"),
                markup.number(record["chance"]),
                markup.interval(comparison, "auc_difference"),
                corrections.format_p(comparison.get("p_value", math.nan)),
                corrections.format_p(comparison.get("mcnemar_p_value", math.nan)),
            ]
        )
        classes.append("flagged" if record["significant"] else "")
    header = ["baseline", "AUC [interval]", "adjusted p (AUC)", "accuracy [interval]", "chance",
              "AUC CNN − baseline [interval]", "CNN better: p", "McNemar p"]  # fmt: skip
    parts.append(markup.table(header, rows, classes))
    seen, feature_rows, feature_classes = set(), [], []
    for record in baselines:
        for item in record.get("feature_differences", []):
            if item["feature"] in seen:
                continue
            seen.add(item["feature"])
            feature_rows.append(
                [item["feature"], markup.number(item["statistic"]), corrections.format_p(item["p_adjusted"])]
            )
            feature_classes.append("flagged" if item["differs"] else "")
    if feature_rows:
        parts.append(markup.note(prose("feature_differences")))
        parts.append(markup.table(["feature", "KS statistic", "adjusted p"], feature_rows, feature_classes))
    return parts


def _mmd_paragraphs(record: dict | None) -> list[str]:
    """The kernel two-sample test's sentence and how it was made; none when it was switched off (or the metrics
    predate it)."""
    if not record:
        return []
    return [
        f"<p>{html.escape(record['sentence'])}</p>",
        markup.note(
            prose(
                "mmd",
                pixels=str(record.get("pixels", "")),
                permutations=str(record.get("permutations", "")),
                examples=str(sum((record.get("examples_per_class") or {}).values())),
            )
        ),
    ]


def breakdowns_section(content: PageContent) -> list[str]:
    parts = ["<h2>Breakdowns</h2>", markup.note(prose("breakdowns", correction=_correction(content)))]
    for key, text in (("accuracy_vs_g", "accuracy_vs_g"), ("breakdowns", "breakdowns_figure")):
        if key in content.figures:
            parts.append(markup.image(content.figures[key], key.replace("_", " "), prose(text)))
    table = content.table
    if not len(table):
        return parts
    header = ["bin", "examples (real / fake)", "AUC [interval]", "adjusted p (AUC)", "outcome",
              "accuracy [interval]", "chance"]  # fmt: skip
    for name in dict.fromkeys(table["breakdown"]):
        rows_frame = table[table["breakdown"] == name]
        rows = [
            [
                row["bin"],
                f"{row['examples']} ({row['real']} / {row['fake']})",
                markup.interval(row, "auc"),
                corrections.format_p(markup.to_float(row["p_adjusted"])),
                OUTCOME_WORDS.get(row.get("outcome"), ""),
                markup.interval(row, "accuracy"),
                markup.number(row["chance"]),
            ]
            for row in (_clean(record) for record in rows_frame.to_dict(orient="records"))
        ]
        parts.append(f"<h3>{html.escape(str(name))}</h3>")
        parts.append(markup.table(header, rows, ["flagged" if flagged else "" for flagged in rows_frame["flagged"]]))
    return parts


def mosaics_section(content: PageContent) -> list[str]:
    bands = content.bands
    band = "g" if "g" in bands else (bands[0] if bands else "")
    parts = ["<h2>Mosaics</h2>", markup.note(prose("mosaics", band=band))]
    for percentile, path, pairs in content.mosaics:
        differences = [abs(content.magnitudes[real] - content.magnitudes[fake]) for real, fake in pairs]
        detail = f"largest pair difference {max(differences):.2f} mag" if differences else "no pairs available"
        parts.append(
            markup.image(
                path, f"mosaic {percentile}", f"{markup.ordinal(percentile)} percentile in brightness; {detail}."
            )
        )
    return parts


def galleries_section(content: PageContent) -> list[str]:
    return ["<h2>Galleries</h2>", markup.note(prose("galleries"))] + [
        markup.image(path, title, title + "; P(fake) on the right.") for title, path in content.galleries
    ]


# -- pieces -----------------------------------------------------------------------------------


def _verdict_rows(verdict: dict) -> list[list[str]]:
    """The verdict table: the outcome, the measurement, what the test could detect, the original statistic."""
    settle = verdict.get("examples_to_settle")
    rows = [
        ["outcome", OUTCOME_WORDS.get(verdict.get("outcome"), "")],
        ["test examples (real / fake)", f"{verdict['examples']} ({verdict['real']} / {verdict['fake']})"],
    ]
    if verdict.get("folds"):
        rows.append(
            [
                "cross-fitting by brick",
                f"{verdict['folds']} folds: every example scored by the model that never saw its brick; the AUC "
                f"compares scores within a fold only",
            ]
        )
    rows += [
        [f"AUC [{verdict.get('auc_interval_method', '')} interval]", markup.interval(verdict, "auc")],
        ["tolerance: AUC that does not matter", f"up to {0.5 + verdict['tolerance']:.3f}"],
        [
            f"p-value, AUC above 0.5 (Mann-Whitney, {verdict.get('auc_test_method', '')}, one-sided)",
            corrections.format_p(verdict["auc_p_value"]),
        ],
        [
            f"minimum detectable AUC (power {verdict['power']:g}, level {verdict['significance']:g})",
            markup.number(verdict["minimum_detectable_auc"]),
        ],
        [
            f"minimum AUC found distinguishable (power {verdict['power']:g})",
            markup.number(verdict["minimum_distinguishable_auc"]),
        ],
        ["total-variation distance, lower bound", markup.number(verdict["tv_lower_bound"])],
    ]
    if settle is not None:
        settled = "never" if not math.isfinite(settle) else f"{settle:,.0f}"
        rows.append(["test examples that would settle it (about)", settled])
    rows += [
        ["accuracy [Clopper-Pearson interval]", markup.interval(verdict, "accuracy")],
        ["chance (majority share)", markup.number(verdict["chance"])],
        [
            "p-value, accuracy above chance (exact binomial, one-sided)",
            corrections.format_p(verdict["accuracy_p_value"]),
        ],
        ["log loss (nats)", markup.number(verdict["log_loss"])],
        ["significance level", f"{verdict['significance']:g}"],
        ["interval confidence", f"{verdict['confidence']:g}"],
    ]
    return rows


def _attribution_absent(metrics: dict) -> str:
    """Why the page has no attribution maps: switched off (``settings.attribution`` false in metrics.json, from
    evaluate.attribution or ``--no-attribution``), else not made (no model given, or an older evaluation)."""
    if (metrics.get("settings") or {}).get("attribution") is False:
        return prose("attribution_off")
    return prose("attribution_absent", **_array_names(ATTRIBUTION_NAME))


def _array_names(name: str) -> dict[str, str]:
    """The placeholders of the prose saying the evaluation made no ``name`` (an .npz file of realfake evaluate)."""
    return {"file": html.escape(name), "metrics": html.escape(METRICS_NAME)}


def _correction(content: PageContent) -> str:
    return html.escape(content.metrics.get("correction", ""))


def _clean(record: dict) -> dict:
    return {
        key: (
            markup.to_float(value) if key not in ("bin", "breakdown", "flagged", "examples", "real", "fake") else value
        )
        for key, value in record.items()
    }
