"""The measured tables in the docs, and the links between the pages.

A page of docs/results/ says which script and command measured it; each of its tables sits between markers
(``<!-- begin: controls.py:verdicts -->``) that the script's ``--results-page`` rewrites through
scripts/results_page.py, leaving the rest of the page byte for byte. The README stays a short guide, and every
relative link in it and in docs/ leads to a file that exists.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import stat
import sys
from pathlib import Path

import pytest
from fixtures import REPOSITORY

SCRIPTS = REPOSITORY / "scripts"
DOCS = REPOSITORY / "docs"
RESULT_PAGES = sorted((DOCS / "results").glob("*.md"))
MARKDOWN = [REPOSITORY / "README.md", *sorted(DOCS.rglob("*.md"))]
# [text](target): a Markdown link or image; the target up to the first space or closing parenthesis.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def load_script(name: str):
    """A module of scripts/, imported as the scripts import each other (scripts/ on sys.path)."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        specification = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(specification)
        specification.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPTS))
    return module


@pytest.fixture(scope="module")
def results_page():
    return load_script("results_page")


def blocks_of(path: Path, results_page) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    return {name: results_page.block_content(text, name) for name in results_page.block_names(text)}


def table_rows(block: str) -> list[list[str]]:
    """The cells of a Markdown table's body rows (the header and its rule left out)."""
    lines = [line for line in block.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines[2:]]


def numbers(cell: str) -> list[float]:
    return [float(number) for number in NUMBER.findall(cell)]


# -- the writer ----------------------------------------------------------------------------------------------------


def test_a_block_is_replaced_and_every_other_byte_kept(tmp_path, results_page):
    before = (
        "# Page\r\n\r\nProse with ± and µs, kept.\r\n"
        "<!-- begin: one.py:table -->\r\n| a |\r\n| --- |\r\n| 1 |\r\n<!-- end: one.py:table -->\r\n"
        "Between.\r\n<!-- begin: two.py:table -->\r\n| b |\r\n<!-- end: two.py:table -->\r\nno final newline"
    )
    page = tmp_path / "page.md"
    page.write_bytes(before.encode("utf-8"))
    page.chmod(0o640)
    results_page.write_blocks(page, {"one.py:table": "| a |\n| --- |\n| 2 |\n| 3 |\n"})
    after = page.read_bytes().decode("utf-8")
    begin, end = "<!-- begin: one.py:table -->", "<!-- end: one.py:table -->"
    assert after[: after.index(begin)] == before[: before.index(begin)]
    assert after[after.index(end) :] == before[before.index(end) :]
    assert after[after.index(begin) : after.index(end)] == begin + "\r\n| a |\r\n| --- |\r\n| 2 |\r\n| 3 |\r\n"
    assert results_page.block_content(after, "two.py:table") == "| b |"
    assert stat.S_IMODE(page.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["page.md"]  # no temporary file left beside it


def test_rewriting_each_block_with_what_it_holds_leaves_every_page_byte_identical(results_page):
    """A script that measures the same figures again changes nothing but its figures."""
    for path in MARKDOWN:
        text = path.read_bytes().decode("utf-8")
        for name in results_page.block_names(text):
            assert results_page.replace_block(text, name, results_page.block_content(text, name)) == text, (
                f"{path.relative_to(REPOSITORY)}: block {name} is not one line after its begin marker and one "
                "before its end marker"
            )


@pytest.mark.parametrize(
    "text, why",
    [
        ("<!-- begin: x.py:t -->\n| a |\n", "<!-- end: x.py:t --> is there 0 times"),
        ("<!-- begin: x.py:t -->\n<!-- end: x.py:t -->\n<!-- begin: x.py:t -->\n", "begin: x.py:t --> is there 2"),
        ("<!-- end: x.py:t -->\n<!-- begin: x.py:t -->\n", "comes before"),
    ],
)
def test_a_page_without_the_block_exactly_once_is_refused_and_left_alone(tmp_path, results_page, text, why):
    page = tmp_path / "page.md"
    page.write_text(text)
    with pytest.raises(ValueError, match=re.escape(why)) as error:
        results_page.write_blocks(page, {"x.py:t": "| new |"})
    assert str(page) in str(error.value)
    with pytest.raises(ValueError, match=re.escape(why)):
        results_page.check_blocks(page, ["x.py:t"])
    assert page.read_text() == text and os.listdir(tmp_path) == ["page.md"]


# -- the pages and their scripts ------------------------------------------------------------------------------------


def test_every_results_page_names_the_scripts_commands_and_dates_of_its_measurements(results_page):
    assert {path.stem for path in RESULT_PAGES} >= {"controls", "audit", "sensitivity", "pixels", "scale", "cost"}
    for path in RESULT_PAGES:
        text = path.read_text(encoding="utf-8")
        opening = text.split("\n## ", 1)[0]  # the title and what measured the page, before its first section
        name = path.relative_to(REPOSITORY)
        scripts = set(re.findall(r"scripts/(\w+\.py)", opening))
        assert scripts, f"{name} does not say which script measured it"
        assert all((SCRIPTS / script).is_file() for script in scripts), f"{name} names a script that is not there"
        assert re.search(r"`\.venv/bin/python scripts/\w+\.py[^`]*`", opening), f"{name} gives no command"
        assert re.search(r"\b20\d\d-\d\d-\d\d\b", opening), f"{name} does not say when it was measured"
        for block in results_page.block_names(text):
            assert block.split(":")[0] in scripts, f"{name}: the script of block {block} is not named at the top"


def test_every_block_in_the_docs_belongs_to_a_script_that_rewrites_it(results_page):
    found = 0
    for path in MARKDOWN:
        for name, content in blocks_of(path, results_page).items():
            found += 1
            where = f"{path.relative_to(REPOSITORY)}: block {name}"
            script_name, table = name.split(":")
            script = SCRIPTS / script_name
            assert script.is_file(), f"{where}: scripts/{script_name} does not exist"
            source = script.read_text(encoding="utf-8")
            assert '"--results-page"' in source, f"{where}: scripts/{script_name} has no --results-page"
            assert f'"{name}"' in source or f'"{table}"' in source, f"{where}: scripts/{script_name} never writes it"
            assert content.startswith("| ") and len(table_rows(content)) >= 1, f"{where} holds no table"
    assert found >= 12


def test_every_block_a_script_names_is_in_the_docs(results_page):
    """A block name written out in a script (``"matching.py:table"``) has its markers in some page."""
    names = set()
    for path in MARKDOWN:
        names |= set(results_page.block_names(path.read_text(encoding="utf-8")))
    for script in sorted(SCRIPTS.glob("*.py")):
        for name in re.findall(r'"(\w+\.py:[\w-]+)"', script.read_text(encoding="utf-8")):
            assert name in names, f"scripts/{script.name} writes block {name}, which no page holds"


def test_the_tables_controls_and_matching_write_are_the_tables_on_their_pages(results_page):
    """The seeds, dtype and matching blocks are, cell for cell, what the scripts print from the same figures."""
    controls = load_script("controls")
    assert sorted(controls.RESULTS_TABLES) == ["audit", "audit-real-source", "dtype", "seeds", "verdicts"]
    for table, (page, _) in controls.RESULTS_TABLES.items():
        results_page.check_blocks(DOCS / "results" / page, [f"controls.py:{table}"])

    seeds = blocks_of(DOCS / "results" / "sensitivity.md", results_page)["controls.py:seeds"]
    rows = []
    for seed, auc, p_value, examples, outcome in table_rows(seeds):
        value, low, high = numbers(auc)
        rows.append({"seed": int(seed), "auc": value, "auc_low": low, "auc_high": high,
                     "auc_p_value": float(p_value), "examples": int(examples), "outcome": outcome})  # fmt: skip
    assert len(rows) == 5 and controls.seeds_table(rows) == seeds

    dtype = blocks_of(DOCS / "results" / "cost.md", results_page)["controls.py:dtype"]
    rows = []
    for control, *cells in table_rows(dtype):
        for dtype_name, cell in zip(("float32", "float16"), cells):
            value, low, high = numbers(cell.split(")")[0])
            rows.append({"control": control.strip("`"), "dtype": dtype_name, "auc": value, "auc_low": low,
                         "auc_high": high, "outcome": cell.rsplit(" ", 1)[1]})  # fmt: skip
    assert len(rows) == 6 and controls.dtype_table(rows) == dtype

    matching = load_script("matching")
    table = blocks_of(DOCS / "results" / "matching.md", results_page)["matching.py:table"]
    rows = []
    for columns, excluded, examples, difference, scatter, auc, outcome in table_rows(table):
        (difference, error), (fake_scatter, sd), (value, low, high) = map(numbers, (difference, scatter, auc))
        rows.append({"columns": [columns.strip("`")], "excluded": {"fake": int(excluded)}, "examples": int(examples),
                     "difference": difference, "error": error, "fake_scatter": fake_scatter, "fake_scatter_sd": sd,
                     "auc": value, "auc_low": low, "auc_high": high, "outcome": outcome})  # fmt: skip
    assert len(rows) == 2 and matching.markdown_table(rows) == table


# -- the power benchmark: its kept rows and its page ---------------------------------------------------------------


BENCH_SETTINGS = {"folds": [5], "epochs": 8, "methods": ["mmd"]}


@pytest.fixture(scope="module")
def bench_power():
    return load_script("bench_power")


def test_kept_rows_are_read_back_and_counted_at_the_level(tmp_path, bench_power):
    rows = tmp_path / "power.jsonl"
    bench_power.append_row(rows, "size:1.5", 1, {"realfake K=5": (0.004, 300.0), "mmd": (0.06, 20.0)},
                           BENCH_SETTINGS)  # fmt: skip
    bench_power.append_row(rows, "size:1.5", 2, {"realfake K=5": (0.2, 310.0), "mmd": (0.01, 22.0)},
                           BENCH_SETTINGS)  # fmt: skip
    bench_power.append_row(rows, "none", 1, {"realfake K=5": (0.5, 290.0), "realfake MMD (K=5 set)": (0.3, math.nan)},
                           BENCH_SETTINGS)  # fmt: skip
    bench_power.append_row(rows, "profile", 1, {"realfake K=5": (0.3, 280.0), "mmd": (0.02, 21.0)}, BENCH_SETTINGS)
    kept = bench_power.read_rows(rows, BENCH_SETTINGS)
    assert list(kept) == [("size:1.5", 1), ("size:1.5", 2), ("none", 1), ("profile", 1)]
    assert kept[("size:1.5", 2)]["mmd"] == (0.01, 22.0)
    assert math.isnan(kept[("none", 1)]["realfake MMD (K=5 set)"][1])
    text = bench_power.tables(kept)
    rates = text.split("Detection rate at 0.05:")[1].split("Mean wall time")[0]
    assert (
        "| control | realfake K=5 | MMDDrift | realfake MMD (K=5 set) | realfake K=5 >= every standard test |" in rates
    )
    assert (
        "| `size:1.5` | 1/2 | 1/2 |  | yes |" in rates
        and "| `none` | 0/1 |  | 0/1 | (null: a rejection is a false alarm) |" in rates
    )
    assert "| `profile` | 0/1 | 1/1 |  | no |" in rates
    table = [
        text.index(f"| `{control}` | {seed} |")
        for control, seed in [("none", 1), ("size:1.5", 1), ("size:1.5", 2), ("profile", 1)]
    ]
    assert table == sorted(table)  # in CONTROLS' order, then by seed, not in the order they were kept
    assert text.rstrip().endswith("| 295 | 21 | - |")  # the mean over the rows that have the method


def test_a_method_with_improbably_many_false_alarms_on_none_does_not_hold_its_level(bench_power):
    rows = {("none", seed): {"realfake K=5": (0.3 + 0.1 * seed, 1.0), "lkd": (0.01 if seed <= 2 else 0.9, 1.0)}
            for seed in range(1, 6)}  # fmt: skip
    rows[("psf:0.75", 1)] = {"realfake K=5": (1e-9, 1.0), "lkd": (0.2, 1.0)}
    level = bench_power.tables(rows).split("The level on `none`")[1].split("Mean wall time")[0]
    # 0 of 5 at 0.05: certain by chance; 2 of 5: 1 - 0.95**5 - 5 * 0.05 * 0.95**4 = 0.0226 < 0.05
    assert "| realfake K=5 | 0/5 | 1 | yes |" in level
    assert "| LearnedKernelDrift | 2/5 | 0.023 | no |" in level
    rows[("none", 2)]["lkd"] = (0.5, 1.0)  # one false alarm of five: 0.23, as often as chance gives it
    assert "| LearnedKernelDrift | 1/5 | 0.23 | yes |" in bench_power.tables(rows)
    assert "The level on" not in bench_power.tables({("psf:0.75", 1): rows[("psf:0.75", 1)]})


def test_the_standard_tests_are_reused_only_from_rows_of_the_same_stamps_and_standard_settings(tmp_path, bench_power):
    earlier = tmp_path / "power8.jsonl"
    bench_power.append_row(earlier, "size:1.5", 3, {"realfake K=5": (0.31, 220.0), "mmd": (0.04, 4.0)}, BENCH_SETTINGS)
    bench_power.append_row(earlier, "none", 3, {"realfake K=5": (0.85, 210.0)}, BENCH_SETTINGS)  # no standard tests
    longer = {**BENCH_SETTINGS, "epochs": BENCH_SETTINGS["epochs"] * 2}  # realfake trained longer: still reusable
    assert bench_power.read_standard(earlier, longer) == {("size:1.5", 3): {"mmd": (0.04, 4.0)}}
    for other in ({"standard_epochs": 5}, {"folds": [1]}):  # the baselines' own training; other stamps
        with pytest.raises(SystemExit, match=re.escape(f"{earlier}:1: standard tests measured with")):
            bench_power.read_standard(earlier, {**longer, **other})


def test_kept_rows_of_other_settings_or_not_rows_are_refused_naming_the_line(tmp_path, bench_power):
    rows = tmp_path / "power.jsonl"
    bench_power.append_row(rows, "none", 1, {"realfake K=5": (0.5, 290.0)}, BENCH_SETTINGS)
    with pytest.raises(SystemExit, match=re.escape(f"{rows}:1: measured with other settings (epochs 8 (now 16))")):
        bench_power.read_rows(rows, {**BENCH_SETTINGS, "epochs": 16})
    assert bench_power.read_rows(rows) == {("none", 1): {"realfake K=5": (0.5, 290.0)}}  # tables only: any settings
    with rows.open("a") as handle:
        handle.write('{"control": "none"}\n')
    with pytest.raises(SystemExit, match=re.escape(f"{rows}:2: not a row of bench_power.py")):
        bench_power.read_rows(rows)


def test_kept_rows_are_tied_to_the_code_that_measured_them(tmp_path, bench_power):
    """A row records the workflow's digest (bench_settings); a row of other code, or of none (kept before rows
    carried it), is refused for going on, and its standard tests are not reused: the stamps came from that code."""
    settings = bench_power.bench_settings(argparse.Namespace(folds=[5], epochs=8, methods=["mmd"], standard_epochs=15,
                                                             standard_network="compact"))  # fmt: skip
    assert settings["workflow"] == load_script("controls").workflow_identity()
    rows = tmp_path / "power.jsonl"
    bench_power.append_row(rows, "none", 1, {"realfake K=5": (0.5, 290.0), "mmd": (0.3, 4.0)}, settings)
    assert bench_power.read_rows(rows, settings) == {("none", 1): {"realfake K=5": (0.5, 290.0), "mmd": (0.3, 4.0)}}
    assert bench_power.read_standard(rows, settings) == {("none", 1): {"mmd": (0.3, 4.0)}}
    other = {**settings, "workflow": "0" * 64}
    with pytest.raises(
        SystemExit,
        match=re.escape(
            f"{rows}:1: measured with other settings (workflow {settings['workflow'][:12]}... (now 000000000000...))"
        ),
    ):
        bench_power.read_rows(rows, other)
    with pytest.raises(
        SystemExit, match=re.escape(f"{rows}:1: standard tests measured with other settings or stamps (workflow")
    ):
        bench_power.read_standard(rows, other)
    older = tmp_path / "older.jsonl"
    bench_power.append_row(
        older, "none", 1, {"realfake K=5": (0.5, 290.0)}, {k: v for k, v in settings.items() if k != "workflow"}
    )
    with pytest.raises(
        SystemExit,
        match=re.escape(
            f"{older}:1: measured with other settings (workflow None (now {settings['workflow'][:12]}...))"
        ),
    ):
        bench_power.read_rows(older, settings)


@pytest.mark.parametrize("rows", ["power16.jsonl", "power.jsonl"])
def test_the_power_page_holds_the_tables_of_its_kept_rows(results_page, bench_power, rows):
    """docs/results/power.md's tables are what bench_power.py prints from the rows kept beside it: each rows file
    in the block of its epochs (16, the demo's: the main tables; 8: the CI controls')."""
    page = DOCS / "results" / "power.md"
    kept = bench_power.read_rows(DOCS / "results" / rows)
    assert len(kept) >= 6
    block = bench_power.page_block(DOCS / "results" / rows)
    assert block == {"power16.jsonl": "bench_power.py:tables", "power.jsonl": "bench_power.py:tables-epochs8"}[rows]
    assert blocks_of(page, results_page)[block] == bench_power.tables(kept)


def test_rows_of_mixed_epochs_have_no_block_on_the_power_page(tmp_path, bench_power):
    rows = tmp_path / "rows.jsonl"
    line = {"control": "none", "seed": 1, "methods": {"realfake K=5": [0.5, 1.0]}, "settings": {"epochs": 8}}
    rows.write_text(json.dumps(line) + "\n")
    assert bench_power.page_block(rows) == "bench_power.py:tables-epochs8"
    rows.write_text(json.dumps(line) + "\n" + json.dumps(line | {"seed": 2, "settings": {"epochs": 16}}) + "\n")
    assert bench_power.page_block(rows) is None
    rows.write_text(json.dumps(line | {"settings": {"epochs": 12}}) + "\n")
    assert bench_power.page_block(rows) is None


def test_the_sensitivity_sentences_with_folds_say_so_and_what_n_would_detect_a_missed_error():
    sensitivity = load_script("sensitivity")
    rows = [
        {"bricks": 12, "mismatch": mismatch, "strength": strength, "examples": examples, "auc": auc, "auc_low": 0.0,
         "auc_high": 1.0, "auc_p_value": p, "outcome": "inconclusive", "minimum_detectable_auc": 0.55}
        for mismatch, strength, examples, auc, p in [
            ("size", 1.1, 1600, 0.525, 0.2), ("size", 1.25, 1600, 0.56, 0.01), ("psf", 0.95, 1600, 0.49, 0.7),
            ("psf", 0.9, 1600, 0.6, 1e-4),
        ]
    ]  # fmt: skip
    text = sensitivity.markdown(rows, folds=5)
    assert (
        "With all 1600 examples tested (5 folds) the CNN detects half-light radii wrong by >= 25% and PSF FWHM "
        "wrong by >= 10%." in text
    )
    # (0.55 - 0.5) / (0.525 - 0.5) = 2: four times the examples.
    assert (
        "Not detected at 1600 examples (12 bricks): half-light radii wrong by 10% (AUC 0.525, 95% CI 0.000-1.000); if "
        "that AUC held, about 6,400 test examples would detect it with 80% power." in text
    )
    assert "PSF FWHM wrong by 5% (AUC 0.490, 95% CI 0.000-1.000); its AUC is not above 0.5." in text
    single = sensitivity.markdown(rows, folds=1)
    assert "With 1600 test examples the CNN detects" in single and "would detect" not in single
    identity = {**rows[0], "bricks": 48, "strength": 1.0, "examples": 7000}  # a grid with only its level so far
    assert "With all 7000 examples tested (5 folds) no size or PSF error was measured yet." in sensitivity.markdown(
        [*rows, identity], folds=5
    )


def test_the_cross_fitted_sensitivity_block_is_what_the_script_writes_from_the_csvs_beside_it(results_page):
    """docs/results/sensitivity.md's cross-fitted table and sentences are sensitivity.py's from the CSVs kept beside
    the page (sensitivity_folds5*.csv, one grid each: 12 bricks, then 48), in that order."""
    sensitivity = load_script("sensitivity")
    from realfake.formats.sensitivity import read_sensitivity_table

    tables = sorted((DOCS / "results").glob("sensitivity_folds5*.csv"))
    assert tables[0].name == "sensitivity_folds5.csv"
    rows = [row for table in tables for row in read_sensitivity_table(table).to_dict("records")]
    block = blocks_of(DOCS / "results" / "sensitivity.md", results_page)["sensitivity.py:crossfit"]
    assert block.strip() == sensitivity.markdown(rows, folds=5).strip()


def test_a_resumed_sensitivity_grid_runs_only_what_its_table_lacks_and_refuses_a_table_of_other_settings(
    tmp_path, monkeypatch
):
    sensitivity = load_script("sensitivity")
    calls = []

    def run_control(mismatch, workdir, strength=None, bricks=None, **runs):
        calls.append((mismatch, strength))
        auc = 0.5 + abs((strength or 1.0) - 1.0)  # each run told apart by its AUC
        return {"mismatch": mismatch, "examples": 100, "auc": auc, "auc_low": auc - 0.05, "auc_high": auc + 0.05,
                "auc_p_value": 0.5, "outcome": "inconclusive", "minimum_detectable_auc": 0.6, "sentence": "measured",
                "seconds": 1.0}  # fmt: skip

    monkeypatch.setattr(sensitivity, "run_control", run_control)
    out = tmp_path / "out"

    def grid(*options):
        common = ["--out", str(out), "--workdir", str(tmp_path), "--bricks", "12", "--folds", "5"]
        monkeypatch.setattr(sys, "argv", ["sensitivity.py", *common, *options])
        calls.clear()
        sensitivity.main()
        table = (out / "sensitivity.csv").read_text().splitlines()[1:]
        return [(line.split(",")[1], float(line.split(",")[2]), float(line.split(",")[4])) for line in table]

    assert grid("--size-strengths", "1", "1.1", "--psf-strengths", "0.9") == [
        ("size", 1.0, 0.5), ("size", 1.1, pytest.approx(0.6)), ("psf", 0.9, pytest.approx(0.6))
    ]  # fmt: skip
    assert calls == [("none", None), ("size", 1.1), ("psf", 0.9)]
    # Resumed: only size 1.2 runs; psf 1 is the kept identity run (none's fakes, pixel for pixel).
    rows = grid("--size-strengths", "1", "1.1", "1.2", "--psf-strengths", "1", "0.9", "--resume")
    assert calls == [("size", 1.2)]
    assert [row[:2] for row in rows] == [("size", 1.0), ("size", 1.1), ("psf", 0.9), ("size", 1.2), ("psf", 1.0)]
    assert rows[-1][2] == 0.5
    # Other settings: refused naming the settings file, the table left as it was; without --resume, measured afresh.
    before = (out / "sensitivity.csv").read_bytes()
    monkeypatch.setattr(sys, "argv", ["sensitivity.py", "--out", str(out), "--folds", "1", "--resume"])
    with pytest.raises(SystemExit, match="settings.json"):
        sensitivity.main()
    assert (out / "sensitivity.csv").read_bytes() == before and not calls[1:]
    # Other code or config (the workflow's digest): refused too, naming what differs.
    monkeypatch.setattr(sensitivity, "workflow_identity", lambda: "other code")
    monkeypatch.setattr(sys, "argv", ["sensitivity.py", "--out", str(out), "--folds", "5", "--resume"])
    with pytest.raises(SystemExit, match="workflow .* \\(now 'other code'\\)"):
        sensitivity.main()
    assert (out / "sensitivity.csv").read_bytes() == before and not calls[1:]
    assert len(grid("--mismatch", "size", "--size-strengths", "1.1")) == 1 and calls == [("size", 1.1)]


def test_the_sensitivity_page_is_written_from_several_grids_and_a_run_in_two_of_them_is_refused(tmp_path, monkeypatch):
    sensitivity = load_script("sensitivity")
    from realfake.formats.sensitivity import write_sensitivity_table

    def run(bricks, mismatch, strength, examples, p):
        return {"bricks": bricks, "mismatch": mismatch, "strength": strength, "examples": examples, "auc": 0.55,
                "auc_low": 0.52, "auc_high": 0.58, "auc_p_value": p, "outcome": "inconclusive",
                "minimum_detectable_auc": 0.54, "seconds": 1.0}  # fmt: skip

    write_sensitivity_table([run(12, "size", 1.25, 1600, 0.01), run(12, "psf", 0.9, 1600, 0.2)], tmp_path / "a.csv")
    write_sensitivity_table([run(48, "size", 1.1, 6400, 0.3), run(48, "psf", 0.9, 6400, 0.001)], tmp_path / "b.csv")
    out = tmp_path / "out"
    argv = ["sensitivity.py", "--folds", "5", "--out", str(out), "--from-table"]
    monkeypatch.setattr(sys, "argv", [*argv, str(tmp_path / "a.csv"), str(tmp_path / "b.csv")])
    sensitivity.main()
    text = (out / "sensitivity.md").read_text()
    assert [line.split(" | ")[0] for line in text.splitlines()[2:6]] == ["| 12", "| 12", "| 48", "| 48"]
    assert "With all 1600 examples tested (5 folds) the CNN detects half-light radii wrong by >= 25%" in text
    assert "With all 6400 examples tested (5 folds) the CNN detects no half-light radii error up to 10% and PSF" in text
    write_sensitivity_table([run(48, "psf", 0.9, 6400, 0.001)], tmp_path / "c.csv")
    monkeypatch.setattr(sys, "argv", [*argv, str(tmp_path / "b.csv"), str(tmp_path / "c.csv")])
    with pytest.raises(SystemExit, match=r"c\.csv: the run \(48, 'psf', 0\.9\)"):
        sensitivity.main()


def test_the_workflow_identity_follows_the_files_a_run_copies_and_nothing_else(tmp_path):
    controls = load_script("controls")
    for part in controls.WORKFLOW_PARTS:
        (tmp_path / part).mkdir(parents=True)
        (tmp_path / part / "a.py").write_text("x = 1\n")
    identity = controls.workflow_identity(tmp_path)
    (tmp_path / "src" / "__pycache__").mkdir()
    (tmp_path / "src" / "__pycache__" / "a.cpython-312.pyc").write_bytes(b"compiled")
    (tmp_path / "src" / "realfake.egg-info").mkdir()  # pip install -e . writes it; a fresh clone has none
    (tmp_path / "src" / "realfake.egg-info" / "PKG-INFO").write_text("Name: realfake\n")
    (tmp_path / "config" / "README.md").write_text("prose\n")
    (tmp_path / "notes.txt").write_text("not a part\n")
    assert controls.workflow_identity(tmp_path) == identity
    (tmp_path / "config" / "a.py").write_text("x = 2\n")
    changed = controls.workflow_identity(tmp_path)
    assert changed != identity
    (tmp_path / "config" / "a.py").rename(tmp_path / "config" / "b.py")  # same bytes, another file
    assert controls.workflow_identity(tmp_path) not in {identity, changed}
    assert controls.workflow_identity() == controls.workflow_identity()  # the repository's: stable


# -- the README and the links -------------------------------------------------------------------------------------


def test_the_readme_is_a_short_guide_with_the_two_commands():
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 150
    # .ci/run runs "exactly the README's test command".
    assert "\n    make demo    #" in readme and "\n    make test    #" in readme
    assert "make test" in (REPOSITORY / ".ci" / "run").read_text(encoding="utf-8")


def test_every_relative_link_in_the_readme_and_the_docs_leads_to_a_file():
    broken = []
    for path in MARKDOWN:
        for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for target in LINK.findall(line):
                if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                    continue  # a web address, or a heading of the same page
                if not (path.parent / target.split("#")[0]).exists():
                    broken.append(f"{path.relative_to(REPOSITORY)}:{line_number}: {target}")
    assert broken == [], "links to files that do not exist:\n" + "\n".join(broken)
