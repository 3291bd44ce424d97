"""The Snakemake workflow: config validation, the jobs a dry run plans, lint and format.

Each test runs the project's own snakemake on a copy of the workflow (Snakefile,
workflow/, config/, profiles/, environment.yml) in tmp_path, so no .snakemake state
is left in the repository. Only dry runs: nothing is rendered. The workflow imports
realfake.mock, found through PYTHONPATH=src whether or not the package is installed.
"""

import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fixtures import REPOSITORY

BIN = Path(sys.executable).parent
WORKFLOW_PARTS = ["Snakefile", "workflow", "config", "profiles", "environment.yml"]
BRICK_NAME = re.compile(r"\d{4}[pm]\d{3}")


def default_config() -> dict:
    return yaml.safe_load((REPOSITORY / "config" / "config.yaml").read_text())


def schema() -> dict:
    return yaml.safe_load((REPOSITORY / "workflow" / "schemas" / "config.schema.yaml").read_text())


@pytest.fixture
def workflow_copy(tmp_path: Path) -> Path:
    """A copy of the workflow to run Snakemake in."""
    copy = tmp_path / "repository"
    copy.mkdir()
    for part in WORKFLOW_PARTS:
        source = REPOSITORY / part
        if source.is_dir():
            shutil.copytree(source, copy / part)
        else:
            shutil.copy2(source, copy / part)
    return copy


def snakemake(directory: Path, *arguments: str) -> subprocess.CompletedProcess:
    """Run the project's snakemake in directory; stdout and stderr together in .stdout."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in [str(REPOSITORY / "src"), environment.get("PYTHONPATH", "")] if part
    )
    return subprocess.run(
        [str(BIN / "snakemake"), *arguments],
        cwd=directory,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )


def dry_run(directory: Path, overrides: dict | None = None) -> subprocess.CompletedProcess:
    """snakemake -n -p, with overrides (if any) merged into the config from a file."""
    arguments = ["-n", "-p", "--cores", "1"]
    if overrides is not None:
        override_file = directory.parent / "override.yaml"
        override_file.write_text(yaml.safe_dump(overrides))
        arguments += ["--configfile", str(override_file)]
    return snakemake(directory, *arguments)


def from_realfake_mock(expression: str):
    """The value of a (JSON-serialisable) expression evaluated with realfake.mock.layout's names, from src/."""
    environment = dict(os.environ, PYTHONPATH=str(REPOSITORY / "src"))
    result = subprocess.run(
        [sys.executable, "-c", f"import json; from realfake.mock.layout import *; print(json.dumps({expression}))"],
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def job_counts(output: str) -> dict[str, int]:
    """{rule: jobs} from the "Job stats" table of a dry run, without the total."""
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    counts = {}
    for line in table.splitlines():
        match = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if match and match[1] != "total":
            counts[match[1]] = int(match[2])
    return counts


def planned_jobs(output: str, rule: str) -> list[str]:
    """The text of each job of rule in a dry run's listing."""
    return [block for block in output.split("\nrule ")[1:] if block.startswith(f"{rule}:")]


def job_field(job: str, field: str) -> str:
    match = re.search(rf"^\s+{field}: (.*)$", job, flags=re.MULTILINE)
    assert match, f"no {field} in job:\n{job}"
    return match[1]


def mock_survey_settings(output: str) -> set[str]:
    """The distinct settings that the dry run's `realfake mock-survey` commands
    pass, leaving out what legitimately differs per job (--brick, --table-only, log)."""
    settings = set()
    for command in re.findall(r"^Shell command: (realfake mock-survey .*)$", output, flags=re.MULTILINE):
        command = command.split(" > ", 1)[0]
        command = re.sub(r" --brick \S+| --table-only", "", command)
        settings.add(command)
    return settings


def placeholder_trees(dr5: Path, obiwan: Path, brick_names: list[str]) -> None:
    """Empty files where a DR5 tree and an obiwan tree (one rs dir, current layout)
    keep the files the cutouts of these bricks read: enough to plan, not to run."""
    paths = [dr5 / "survey-bricks.fits"]
    for brick in brick_names:
        paths.append(dr5 / "tractor" / brick[:3] / f"tractor-{brick}.fits")
        paths.append(obiwan / "obiwan" / brick[:3] / brick / "rs0" / f"simcat-elg-{brick}.fits")
        for product in ["image", "invvar"]:
            for band in "grz":
                name = f"legacysurvey-{brick}-{product}-{band}.fits.fz"
                paths.append(dr5 / "coadd" / brick[:3] / brick / name)
                paths.append(obiwan / "coadd" / brick[:3] / brick / "rs0" / name)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def files_source(tmp_path: Path, brick_lines: str) -> dict:
    """An `input` override reading a brick list and trees holding (empty) files for
    the bricks it names correctly."""
    (tmp_path / "dr5").mkdir()
    (tmp_path / "obiwan").mkdir()
    brick_names = sorted(set(BRICK_NAME.findall(brick_lines)))
    placeholder_trees(tmp_path / "dr5", tmp_path / "obiwan", brick_names)
    bricks_file = tmp_path / "bricks.txt"
    bricks_file.write_text(brick_lines)
    return {
        "input": {
            "source": "files",
            "dr5_dir": str(tmp_path / "dr5"),
            "obiwan_dir": str(tmp_path / "obiwan"),
            "bricks_file": str(bricks_file),
        },
        # A brick or two: too few for a split by brick.
        "shards": {"split": "example"},
    }


def test_default_dry_run_with_the_local_profile_renders_each_mock_brick_once(workflow_copy):
    result = snakemake(workflow_copy, "-n", "--profile", "profiles/local")
    assert result.returncode == 0, result.stdout

    counts = job_counts(result.stdout)
    assert counts["mock_brick"] == default_config()["mock"]["bricks"] == 12
    assert counts["mock_brick_table"] == 1
    jobs = planned_jobs(result.stdout, "mock_brick")
    wildcards = [dict(re.findall(r"(\w+)=(\w+)", job_field(job, "wildcards"))) for job in jobs]
    bricks = [values["brick"] for values in wildcards]
    assert sorted(bricks) == sorted(from_realfake_mock("mock_brick_names(12)"))
    assert all(BRICK_NAME.fullmatch(brick) for brick in bricks)
    assert all(values["bri"] == values["brick"][:3] for values in wildcards)


# The files of one rs dir (run) of a mock brick in each injector's layout (realfake.paths), and how its name is told.
RUN_FILES = {
    "obiwan": (
        r"/(rs\d+)/simcat",
        [
            "results/mock/obiwan/coadd/{directory}/{run}/legacysurvey-{brick}-{product}-{band}.fits.fz",
            "results/mock/obiwan/obiwan/{directory}/{run}/simcat-elg-{brick}.fits",
            "results/mock/obiwan/tractor/{directory}/{run}/tractor-{brick}.fits",
        ],
    ),
    "legacysim": (
        r"legacysim/(file0_rs\d+_skip0)/sim/",
        [
            "results/mock/legacysim/{run}/coadd/{directory}/legacysurvey-{brick}-{product}-{band}.fits.fz",
            "results/mock/legacysim/{run}/sim/{bri}/injected-{brick}.fits",
            "results/mock/legacysim/{run}/tractor/{bri}/tractor-{brick}.fits",
        ],
    ),
}


@pytest.mark.parametrize("injector", ["obiwan", "legacysim"])
def test_each_mock_brick_job_lists_every_file_of_its_brick(workflow_copy, injector):
    result = dry_run(workflow_copy, {"mock": {"injector": injector, "release": "dr9"}})
    assert result.returncode == 0, result.stdout

    job = planned_jobs(result.stdout, "mock_brick")[0]
    brick = re.search(r"brick=(\w+)", job_field(job, "wildcards"))[1]
    directory = f"{brick[:3]}/{brick}"
    outputs = set(job_field(job, "output").split(", "))
    run_name, run_patterns = RUN_FILES[injector]
    runs = {match[1] for path in outputs if (match := re.search(run_name, path))}
    assert len(runs) == 2
    expected = {f"results/mock/dr5/tractor/{brick[:3]}/tractor-{brick}.fits"}
    expected |= {f"results/mock/truth/{brick[:3]}/truth-{brick}.fits"}
    for band in "grz":
        for product in ["image", "invvar"]:
            expected.add(f"results/mock/dr5/coadd/{directory}/legacysurvey-{brick}-{product}-{band}.fits.fz")
    for pattern in run_patterns:
        for run in runs:
            for band in "grz":
                for product in ["image", "invvar"]:
                    expected.add(
                        pattern.format(
                            directory=directory, bri=brick[:3], brick=brick, run=run, product=product, band=band
                        )
                    )
    assert outputs == expected
    assert job_field(job, "log") == f"logs/mock/{directory}.log"
    assert job_field(job, "benchmark") == f"benchmarks/mock/{directory}.tsv"


def test_a_legacysim_mock_plans_cutouts_reading_its_runs(workflow_copy):
    result = dry_run(workflow_copy, {"mock": {"injector": "legacysim", "release": "dr10", "bricks": 3}})
    assert result.returncode == 0, result.stdout
    assert job_counts(result.stdout)["cutouts"] == 6
    assert mock_survey_settings(result.stdout) == {
        "realfake mock-survey --out results/mock --bricks 3 --size 836 --seed 1 --mismatch none"
        " --model galaxies --rsdirs 2 --fakes-per-rsdir 50 --release dr10 --injector legacysim"
    }
    for job in planned_jobs(result.stdout, "cutouts"):
        kind, brick = (re.search(rf"{name}=(\w+)", job_field(job, "wildcards"))[1] for name in ("kind", "brick"))
        inputs = job_field(job, "input").split(", ")
        command = re.search(r"^Shell command: (.*)$", job, flags=re.MULTILINE)[1]
        assert "--obiwan-dir results/mock/legacysim --injector legacysim" in command
        if kind == "sim":
            assert sorted(path for path in inputs if "/sim/" in path) == [
                f"results/mock/legacysim/file0_rs{first}_skip0/sim/{brick[:3]}/injected-{brick}.fits"
                for first in (0, 50)
            ]
            assert not [path for path in inputs if "results/mock/dr5/coadd" in path or "/obiwan/" in path]
            assert sum("/coadd/" in path for path in inputs) == 2 * 6


def test_a_mock_of_stars_plans_with_the_stars_selection(workflow_copy):
    overrides = {"mock": {"model": "stars", "mismatch": "psf"}, "cutouts": {"selection": "psf_stars"}}
    result = dry_run(workflow_copy, overrides)
    assert result.returncode == 0, result.stdout
    (settings,) = mock_survey_settings(result.stdout)
    assert " --mismatch psf --model stars " in settings
    for job in planned_jobs(result.stdout, "cutouts"):
        assert "--selection psf_stars" in re.search(r"^Shell command: (.*)$", job, flags=re.MULTILINE)[1]


def test_a_griz_mock_renders_dr10s_i_band_and_cuts_eight_channels(workflow_copy):
    overrides = {"bands": ["g", "r", "i", "z"], "mock": {"release": "dr10", "injector": "legacysim", "bricks": 3}}
    result = dry_run(workflow_copy, overrides)
    assert result.returncode == 0, result.stdout
    assert mock_survey_settings(result.stdout) == {
        "realfake mock-survey --out results/mock --bands griz --bricks 3 --size 836 --seed 1 --mismatch none"
        " --model galaxies --rsdirs 2 --fakes-per-rsdir 50 --release dr10 --injector legacysim"
    }
    for job in planned_jobs(result.stdout, "cutouts"):
        inputs = job_field(job, "input").split(", ")
        assert [path for path in inputs if path.endswith("-image-i.fits.fz")], inputs
        assert " --bands griz " in re.search(r"^Shell command: (.*)$", job, flags=re.MULTILINE)[1]


def test_cross_fitting_plans_one_training_and_one_prediction_per_view_and_fold(workflow_copy):
    """evaluate.folds 3 with one audited view: the shards made in 3 folds, 3 models per view (jobs SLURM runs side
    by side), each predicting its fold's examples, and the evaluation reading all 6 models' predictions, with fold
    0's model for the attribution maps and its history for the report."""
    result = dry_run(workflow_copy, {"evaluate": {"folds": 3, "audit": ["centre_only"]}})
    assert result.returncode == 0, result.stdout
    assert job_counts(result.stdout)["train"] == 6 and job_counts(result.stdout)["predict"] == 6
    (shards,) = planned_jobs(result.stdout, "shards")
    assert " --folds 3 " in shell_command(shards)
    trainings = {
        job_field(job, "output").split(", ")[0]: shell_command(job) for job in planned_jobs(result.stdout, "train")
    }
    for view in ("full", "centre_only"):
        for fold in range(3):
            command = trainings[f"results/train/{view}-fold{fold}/model.keras"]
            assert f" --view {view} --fold {fold} " in command
    for job in planned_jobs(result.stdout, "predict"):
        model = job_field(job, "input").split(", ")[0]
        fold = re.fullmatch(r"results/train/\w+-fold(\d)/model.keras", model)[1]
        assert f" --fold {fold} " in shell_command(job)
        assert job_field(job, "output") == model.replace("train", "evaluate").replace(
            "model.keras", "parts/1-of-1.parquet"
        )
    (evaluate,) = planned_jobs(result.stdout, "evaluate")
    command = shell_command(evaluate)
    assert "--model results/train/full-fold0/model.keras" in command
    for fold in range(3):
        assert f"results/evaluate/full-fold{fold}/parts/1-of-1.parquet" in command
        assert f"--audit centre_only=results/evaluate/centre_only-fold{fold}/parts/1-of-1.parquet" in command
    (report,) = planned_jobs(result.stdout, "report")
    assert "--train $(dirname results/train/full-fold0/history.json)" in shell_command(report)


def test_without_cross_fitting_the_shards_train_and_predict_commands_are_unchanged(workflow_copy):
    result = dry_run(workflow_copy)
    assert result.returncode == 0, result.stdout
    (shards,) = planned_jobs(result.stdout, "shards")
    assert "--folds" not in shell_command(shards)
    (train,) = planned_jobs(result.stdout, "train")
    assert job_field(train, "output").split(", ")[0] == "results/train/full/model.keras"
    assert " --view full --intra-op-threads " in shell_command(train) and "--fold" not in shell_command(train)
    (predict,) = planned_jobs(result.stdout, "predict")
    assert job_field(predict, "output") == "results/evaluate/full/parts/1-of-1.parquet"
    assert " --part 1-of-1 --out " in shell_command(predict) and "--fold" not in shell_command(predict)


def shell_command(job: str) -> str:
    return re.search(r"^Shell command: (.*)$", job, flags=re.MULTILINE)[1]


def test_the_i_band_with_a_mock_of_another_release_stops_planning_naming_the_keys(workflow_copy):
    result = dry_run(workflow_copy, {"bands": ["g", "r", "i", "z"]})
    assert result.returncode != 0
    assert (
        "config bands: only DR10 has the i band: bands griz need release dr10, not dr5 (config mock.release; "
        "flags --bands and --release)" in result.stdout
    )
    assert "Job stats" not in result.stdout


def test_a_legacysim_mock_of_dr5_catalogs_stops_planning_naming_both_keys(workflow_copy):
    result = dry_run(workflow_copy, {"mock": {"injector": "legacysim"}})
    assert result.returncode != 0
    assert (
        "config mock.injector: injector legacysim writes legacypipe DR9.6.9's catalogs: it needs release dr9 or "
        "dr10, not dr5 (config mock.injector and mock.release" in result.stdout
    )
    assert "Job stats" not in result.stdout


def legacysim_tree(tree: Path, brick_names: list[str]) -> None:
    """Empty files where a legacysim tree (one run) keeps the files the sim cutouts of these bricks read."""
    for brick in brick_names:
        run = tree / "file0_rs0_skip0"
        paths = [
            run / "sim" / brick[:3] / f"injected-{brick}.fits",
            run / "tractor" / brick[:3] / f"tractor-{brick}.fits",
        ]
        for product in ["image", "invvar"]:
            for band in "grz":
                paths.append(run / "coadd" / brick[:3] / brick / f"legacysurvey-{brick}-{product}-{band}.fits.fz")
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()


def test_source_files_with_a_legacysim_tree_plans_its_runs_files(workflow_copy, tmp_path):
    overrides = files_source(tmp_path, "1238p245\n")
    legacysim = tmp_path / "legacysim"
    legacysim_tree(legacysim, ["1238p245"])
    overrides["input"].update(obiwan_dir=str(legacysim), injector="legacysim")
    result = dry_run(workflow_copy, overrides)
    assert result.returncode == 0, result.stdout
    (sim,) = [job for job in planned_jobs(result.stdout, "cutouts") if "kind=sim" in job_field(job, "wildcards")]
    inputs = set(job_field(sim, "input").split(", "))
    run = legacysim / "file0_rs0_skip0"
    assert {
        str(run / "sim" / "123" / "injected-1238p245.fits"),
        str(run / "tractor" / "123" / "tractor-1238p245.fits"),
    } <= inputs
    assert sum(str(run / "coadd") in path for path in inputs) == 6
    assert "--injector legacysim" in sim


@pytest.mark.parametrize("injector", ["obiwan", "legacysim"])
def test_a_fakes_tree_of_the_other_injector_stops_planning_naming_the_keys(workflow_copy, tmp_path, injector):
    overrides = files_source(tmp_path, "1238p245\n")
    if injector == "obiwan":
        # A legacysim tree read as obiwan's.
        legacysim_tree(tmp_path / "legacysim", ["1238p245"])
        overrides["input"]["obiwan_dir"] = str(tmp_path / "legacysim")
    overrides["input"]["injector"] = injector
    result = dry_run(workflow_copy, overrides)
    assert result.returncode != 0
    assert f"config input.obiwan_dir: {overrides['input']['obiwan_dir']}" in result.stdout
    assert f"is config input.injector ({injector}) the code that made it?" in result.stdout
    assert "Job stats" not in result.stdout


def test_mock_config_reaches_both_mock_rules_identically(workflow_copy):
    overrides = {
        "bands": ["z"],
        "mock": {"bricks": 2, "seed": 7, "mismatch": "psf", "rsdirs": 3, "fakes_per_rsdir": 10, "release": "dr10"},
        "cutouts": {"selection": "all_primary"},
        "shards": {"match": ["mag_dered_z"], "split": "example"},
    }
    result = dry_run(workflow_copy, overrides)
    assert result.returncode == 0, result.stdout

    assert job_counts(result.stdout)["mock_brick"] == 2
    assert mock_survey_settings(result.stdout) == {
        "realfake mock-survey --out results/mock --bricks 2 --size 836 --seed 7 --mismatch psf"
        " --model galaxies --rsdirs 3 --fakes-per-rsdir 10 --release dr10 --injector obiwan"
    }
    for job in planned_jobs(result.stdout, "mock_brick"):
        outputs = job_field(job, "output").split(", ")
        assert sum("simcat-elg-" in path for path in outputs) == 3
        assert sum("/tractor/" in path and "/rs" in path for path in outputs) == 3
        assert not [path for path in outputs if re.search(r"-(image|invvar)-[gr]\.fits\.fz$", path)]
        assert sum(path.endswith("-image-z.fits.fz") for path in outputs) == 1 + 3


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"mock": {"brickz": 3}}, "'brickz' was unexpected"),
        ({"bandz": ["g"]}, "'bandz' was unexpected"),
        ({"input": {"dr5": "somewhere"}}, "'dr5' was unexpected"),
        ({"mock": {"size": "big"}}, "'big' is not of type 'integer'"),
        ({"mock": {"mismatch": "colour"}}, "'colour' is not one of"),
        ({"bands": ["g", "y"]}, "'y' is not one of"),
        ({"input": {"source": "dr9"}}, "'dr9' is not one of"),
        # The mock renders bricks of 128 to 4096 pixels (realfake.mock.settings.MockSettings).
        ({"mock": {"size": 100}}, "100 is less than the minimum of 128"),
        ({"mock": {"size": 5000}}, "5000 is greater than the maximum of 4096"),
        # Seeds seed numpy's generators, which take no negative seed (realfake.training.settings.TrainSettings).
        ({"train": {"seed": -1}}, "-1 is less than the minimum of 0"),
    ],
)
def test_a_bad_config_stops_snakemake_naming_the_key(workflow_copy, overrides, expected):
    result = dry_run(workflow_copy, overrides)
    assert result.returncode != 0
    assert expected in result.stdout
    assert "Job stats" not in result.stdout


def test_a_wrong_type_names_the_key_path(workflow_copy):
    result = dry_run(workflow_copy, {"mock": {"size": "big"}})
    assert result.returncode != 0
    assert "On instance['mock']['size']" in result.stdout


def test_source_files_without_a_bricks_file_names_the_key(workflow_copy, tmp_path):
    overrides = files_source(tmp_path, "1238p245\n")
    overrides["input"]["bricks_file"] = ""
    result = dry_run(workflow_copy, overrides)
    assert result.returncode != 0
    assert "On instance['input']['bricks_file']" in result.stdout


def test_source_files_with_missing_paths_names_each_key(workflow_copy, tmp_path):
    overrides = files_source(tmp_path, "1238p245\n")
    overrides["input"]["bricks_file"] = str(tmp_path / "no-such-bricks.txt")
    overrides["input"]["obiwan_dir"] = str(tmp_path / "no-such-tree")
    result = dry_run(workflow_copy, overrides)
    assert result.returncode != 0
    assert f"config input.bricks_file: '{tmp_path / 'no-such-bricks.txt'}' is not a file" in result.stdout
    assert f"config input.obiwan_dir: '{tmp_path / 'no-such-tree'}' is not a directory" in result.stdout
    assert "config input.dr5_dir" not in result.stdout


@pytest.mark.parametrize(
    ("brick_lines", "expected"),
    [
        ("1238p245\n123p245\n", "(config input.bricks_file), line 2: '123p245' is not a DR5 brick name"),
        ("1238p245\n1238p245\n", "(config input.bricks_file), line 2: brick 1238p245 is listed twice"),
        ("# no bricks yet\n\n", "(config input.bricks_file) lists no bricks"),
    ],
)
def test_a_bad_brick_list_stops_snakemake_naming_the_line(workflow_copy, tmp_path, brick_lines, expected):
    result = dry_run(workflow_copy, files_source(tmp_path, brick_lines))
    assert result.returncode != 0
    assert expected in result.stdout


def test_source_files_plans_no_mock_jobs(workflow_copy, tmp_path):
    result = dry_run(workflow_copy, files_source(tmp_path, "1238p245  # obiwan DR5 run\n\n1102p240\n"))
    assert result.returncode == 0, result.stdout
    counts = job_counts(result.stdout)
    assert "mock_brick" not in counts
    assert "mock_brick_table" not in counts
    assert "results/mock" not in result.stdout
    assert counts["cutouts"] == 4  # two bricks, real and sim


def test_lint_reports_no_issues(workflow_copy):
    result = snakemake(workflow_copy, "--lint")
    assert result.returncode == 0, result.stdout
    assert "Congratulations, your workflow is in a good condition!" in result.stdout
    assert "Lints for" not in result.stdout


def test_snakefmt_leaves_the_workflow_unchanged():
    result = subprocess.run(
        [str(BIN / "snakefmt"), "--check", "Snakefile", "workflow"],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout


def schema_objects(node: dict, path: str = "config"):
    """(path, schema) for the schema of the whole config and of every key below it."""
    yield path, node
    for key, child in node.get("properties", {}).items():
        yield from schema_objects(child, f"{path}.{key}")


def test_every_schema_key_is_described_defaulted_and_required():
    for path, node in schema_objects(schema()):
        if path != "config":
            assert node.get("description"), f"{path} has no description"
            assert "default" in node, f"{path} has no default"
        if "properties" in node:
            assert node.get("additionalProperties") is False, f"{path} allows unknown keys"
            assert sorted(node.get("required", [])) == sorted(node["properties"]), f"{path}: not every key required"


def test_schema_defaults_are_the_default_config():
    def defaults(node):
        if "properties" in node:
            return {key: defaults(child) for key, child in node["properties"].items()}
        return node["default"]

    assert defaults(schema()) == default_config()


def test_every_config_key_is_explained_in_the_config_readme():
    readme = (REPOSITORY / "config" / "README.md").read_text()
    for path, _ in schema_objects(schema()):
        if path != "config":
            key = path.removeprefix("config.")
            assert f"`{key}`" in readme, f"config/README.md does not explain `{key}`"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"bands": ["z"]},
            [
                "config cutouts.selection elg_padded cuts on bands g, r, z, but config bands is [z]: add g, r to "
                "bands, or set cutouts.selection to all_primary",
                "config shards.match names 'measured_mag_dered_g', which the cutouts catalogs of bands [z] do not "
                "have: set shards.match to columns they have (e.g. [measured_mag_dered_z]) or to [], or add the band "
                "to bands",
            ],
        ),
        (
            {"bands": ["g", "r"], "shards": {"match": ["mag_dered_g", "measured_size"]}},
            [
                "config cutouts.selection elg_padded cuts on bands g, r, z, but config bands is [g, r]: add z to "
                "bands, or set cutouts.selection to all_primary"
            ],
        ),
        (
            {"shards": {"match": ["mag_dered_i"]}},
            [
                "config shards.match names 'mag_dered_i', which the cutouts catalogs of bands [g, r, z] do not "
                "have: set shards.match to columns they have (e.g. [measured_mag_dered_g]) or to [], or add the band "
                "to bands"
            ],
        ),
        (
            {"mock": {"bricks": 2}},
            [
                "config shards.split brick needs at least 3 bricks, and mock.bricks gives 2: set shards.split to "
                "example, or use more bricks"
            ],
        ),
        # What a stage's job would refuse, refused at planning: each stage's settings dataclass, built from the config.
        (
            {"evaluate": {"tolerance": math.nan}},
            ["config evaluate.tolerance: tolerance must be a finite number, got nan"],
        ),
        (
            {"evaluate": {"significance": math.nan}},
            ["config evaluate.significance: significance must be a finite number, got nan"],
        ),
        (
            {"shards": {"test_fraction": math.nan}},
            ["config shards.test_fraction: test fraction must be a finite number, got nan"],
        ),
        (
            {"shards": {"match_bin_width": math.nan}},
            ["config shards.match_bin_width: match bin width must be a finite number, got nan"],
        ),
        (
            {"shards": {"match": ["measured_mag_dered_g", "type"]}},
            [
                "config shards.match: match column 'type' of the cutouts catalogs holds text; matching needs a "
                "numeric column"
            ],
        ),
        (
            {"train": {"learning_rate": math.inf}},
            ["config train.learning_rate: learning_rate must be a finite number, got inf"],
        ),
        (
            {"mock": {"strength": math.nan}},
            [
                "config mock.strength: a mismatch strength needs a named mismatch (size, psf, profile, noise, "
                "background, ivar, undetected or edges), not none"
            ],
        ),
        (
            {"mock": {"strength": 0.5}},
            [
                "config mock.strength: a mismatch strength needs a named mismatch (size, psf, profile, noise, "
                "background, ivar, undetected or edges), not none"
            ],
        ),
        (
            {"mock": {"mismatch": "size", "strength": math.nan}},
            ["config mock.strength: mismatch size strength must be a finite number, got nan"],
        ),
        (
            {"mock": {"mismatch": "ivar", "strength": 5}},
            ["config mock.strength: mismatch ivar strength must be between 0 and 1, got 5.0"],
        ),
        (
            {"mock": {"mismatch": "psf", "strength": math.inf}},
            ["config mock.strength: mismatch psf strength must be a finite number, got inf"],
        ),
        (
            {"mock": {"mismatch": "psf", "strength": 20}},
            ["config mock.strength: mismatch psf strength must be between 0 and 4, got 20.0"],
        ),
        # The mock's stars are compared with the reals of their own selection.
        (
            {"mock": {"model": "stars"}},
            [
                "config mock.model stars injects the stars of selection psf_stars, but config cutouts.selection is "
                "elg_padded: set cutouts.selection to psf_stars, so that the reals are picked as the fakes are"
            ],
        ),
        (
            {"mock": {"model": "stars", "mismatch": "size"}, "cutouts": {"selection": "psf_stars"}},
            [
                "config mock.model: mismatch size changes a galaxy's shape, which a point source has not: it needs "
                "model galaxies, not stars (config mock.mismatch and mock.model; flags --mismatch and --model)"
            ],
        ),
        # Cross-fitting holds whole bricks out of each model, and needs bricks for every fold's two parts.
        (
            {"evaluate": {"folds": 3}, "shards": {"split": "example"}},
            [
                "config evaluate.folds: --folds 3 needs --split brick (shards.split): cross-fitting holds whole "
                "bricks out of each model, and --split example does not keep bricks whole"
            ],
        ),
        (
            {"evaluate": {"folds": 7}},
            [
                "config evaluate.folds 7 needs at least 14 bricks (one for each fold's training part and one for its "
                "validation part), and mock.bricks gives 12: use fewer folds, or more bricks"
            ],
        ),
        # Every problem at once, each naming its key.
        (
            {
                "mock": {"mismatch": "ivar", "strength": 5},
                "shards": {"test_fraction": math.nan, "match_bin_width": math.inf},
                "evaluate": {"tolerance": math.nan},
            },
            [
                "config mock.strength: mismatch ivar strength must be between 0 and 1, got 5.0",
                "config shards.test_fraction: test fraction must be a finite number, got nan",
                "config shards.match_bin_width: match bin width must be a finite number, got inf",
                "config evaluate.tolerance: tolerance must be a finite number, got nan",
            ],
        ),
    ],
)
def test_settings_that_do_not_fit_together_stop_planning_naming_the_keys(workflow_copy, overrides, expected):
    result = dry_run(workflow_copy, overrides)
    assert result.returncode != 0
    problems = [line for line in result.stdout.splitlines() if line.startswith("config ")]
    assert problems == expected
    assert "Job stats" not in result.stdout


def test_every_shell_command_keeps_a_path_with_a_space_in_one_word(workflow_copy, tmp_path):
    """Trees, brick list and sensitivity table under a directory whose name has a space: each printed command
    splits (as the shell does) into words that hold each such path whole."""
    inputs = tmp_path / "survey data"
    inputs.mkdir()
    overrides = files_source(inputs, "1238p245\n")
    sensitivity = inputs / "sensitivity table.csv"
    sensitivity.write_text("bricks,mismatch\n")
    overrides["evaluate"] = {"sensitivity_table": str(sensitivity)}
    result = dry_run(workflow_copy, overrides)
    assert result.returncode == 0, result.stdout
    expected = {
        "--dr5-dir": str(inputs / "dr5"),
        "--obiwan-dir": str(inputs / "obiwan"),
        "--bricks": str(inputs / "bricks.txt"),
        "--sensitivity-table": str(sensitivity),
    }
    commands = re.findall(r"^Shell command: (.*)$", result.stdout, flags=re.MULTILINE)
    seen = set()
    for command in commands:
        words = shlex.split(command)
        for flag, path in expected.items():
            if flag in words:
                assert words[words.index(flag) + 1] == path, command
                seen.add((words[1], flag))
        # No word is a piece of a path cut at its space.
        assert not [word for word in words if word.endswith(str(tmp_path / "survey"))], command
    assert {("cutouts", "--dr5-dir"), ("cutouts", "--obiwan-dir"), ("shards", "--bricks")} <= seen
    assert {("shards", "--dr5-dir"), ("shards", "--obiwan-dir"), ("report", "--sensitivity-table")} <= seen


def test_a_single_band_workflow_with_fitting_settings_plans(workflow_copy):
    overrides = {"bands": ["z"], "cutouts": {"selection": "all_primary"}, "shards": {"match": ["mag_dered_z"]}}
    result = dry_run(workflow_copy, overrides)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("command", ["--dag", "--rulegraph"])
def test_the_workflow_is_drawn_without_cores(workflow_copy, command):
    result = snakemake(workflow_copy, command)
    assert result.returncode == 0, result.stdout
    assert "digraph snakemake_dag" in result.stdout
    assert "train" in result.stdout and "evaluate" in result.stdout


def test_the_shards_job_checks_the_cutouts_came_from_the_configured_trees(workflow_copy, tmp_path):
    result = dry_run(workflow_copy, files_source(tmp_path, "1238p245\n"))
    assert result.returncode == 0, result.stdout
    (command,) = re.findall(r"^Shell command: (realfake shards .*)$", result.stdout, flags=re.MULTILINE)
    assert f"--dr5-dir {tmp_path / 'dr5'} --obiwan-dir {tmp_path / 'obiwan'} --injector obiwan" in command
    assert "--manifest" not in command


def manifest_source(tmp_path: Path, tiles: list[str]) -> dict:
    """An `input` override reading a Rubin-like manifest (one real side, one fake run per tile) whose files exist,
    empty: enough to plan, not to run."""
    document = {"bands": ["g", "r", "z"], "flux": {"unit": "nJy"}, "tiles": []}
    for tile in tiles:
        stem = tile.replace(":", "_")
        sides = {}
        for side in ("real", "fake"):
            files = {band: [f"{side}_{stem}_{band}.fits", "IMAGE"] for band in "grz"}
            weights = {band: [f"{side}_{stem}_{band}.fits", "VARIANCE"] for band in "grz"}
            sides[side] = {"image": files, "weight": weights, "weight_kind": "variance"}
            for path, _ in files.values():
                (tmp_path / path).touch()
        catalog = {"id": "objectid", "radec": ["coord_ra", "coord_dec"], "flux": {b: f"{b}_flux" for b in "grz"}}
        sides["real"]["sources"] = {"path": f"object_{stem}.fits", **catalog}
        truth = {"path": f"truth_{stem}.fits", "id": "injection_id", "radec": ["ra", "dec"],
                 "mag": {b: f"{b}_mag" for b in "grz"}, "drop": ["injection_flag != 0"]}  # fmt: skip
        (tmp_path / f"object_{stem}.fits").touch()
        (tmp_path / f"truth_{stem}.fits").touch()
        document["tiles"].append(
            {"tile": tile, "real": sides["real"], "fake": [{"run": "injected", **sides["fake"], "truth": truth}]}
        )
    manifest = tmp_path / "run.yaml"
    manifest.write_text(yaml.safe_dump(document, sort_keys=False))
    return {"input": {"source": "manifest", "manifest": str(manifest)}, "shards": {"split": "example"}}


def test_source_manifest_plans_each_tiles_cutouts_from_the_files_it_names(workflow_copy, tmp_path):
    tiles = ["lsst_cells_v1:10321:66", "lsst_cells_v1:10321:67"]
    result = dry_run(workflow_copy, manifest_source(tmp_path, tiles))
    assert result.returncode == 0, result.stdout
    counts = job_counts(result.stdout)
    assert counts["cutouts"] == 4 and "mock_brick" not in counts
    jobs = planned_jobs(result.stdout, "cutouts")
    outputs = sorted(job_field(job, "output") for job in jobs)
    assert outputs == sorted(
        f"results/cutouts/{kind}/lss/lsst_cells_v1_10321_{patch}.h5" for kind in ("real", "sim") for patch in (66, 67)
    )
    for job in jobs:
        kind = re.search(r"kind=(\w+)", job_field(job, "wildcards"))[1]
        patch = re.search(r"brick=lsst_cells_v1_10321_(\d+)", job_field(job, "wildcards"))[1]
        side = "real" if kind == "real" else "fake"
        catalog = "object" if kind == "real" else "truth"
        inputs = job_field(job, "input").split(", ")
        assert inputs == [
            str(tmp_path / "run.yaml"),
            *(str(tmp_path / f"{side}_lsst_cells_v1_10321_{patch}_{band}.fits") for band in "grz"),
            str(tmp_path / f"{catalog}_lsst_cells_v1_10321_{patch}.fits"),
        ]
        command = re.search(r"^Shell command: (.*)$", job, flags=re.MULTILINE)[1]
        assert f"--manifest {tmp_path / 'run.yaml'}" in command and "--dr5-dir" not in command
    (shards,) = planned_jobs(result.stdout, "shards")
    assert "--bricks" not in shards
    # The shards check the tiles were cut through this manifest, not the trees (which tiles do not record).
    command = re.search(r"^Shell command: (.*)$", shards, flags=re.MULTILINE)[1]
    assert f"--manifest {tmp_path / 'run.yaml'}" in command
    assert not {"--dr5-dir", "--obiwan-dir", "--injector"} & set(shlex.split(command))


def test_a_manifest_band_without_a_weight_stops_planning_naming_tile_run_band_and_key(workflow_copy, tmp_path):
    overrides = manifest_source(tmp_path, ["lsst_cells_v1:10321:66"])
    manifest = Path(overrides["input"]["manifest"])
    document = yaml.safe_load(manifest.read_text())
    del document["tiles"][0]["fake"][0]["weight"]["r"]
    manifest.write_text(yaml.safe_dump(document))
    result = dry_run(workflow_copy, overrides)
    assert result.returncode != 0
    assert (
        f"config input.manifest: manifest {manifest}: tile lsst_cells_v1:10321:66, fake run injected, band r: "
        "weight missing" in result.stdout
    )
    assert "Job stats" not in result.stdout


def test_a_mock_with_its_manifest_plans_the_rubin_like_files_of_each_brick(workflow_copy):
    result = dry_run(workflow_copy, {"mock": {"manifest": True, "bricks": 3}})
    assert result.returncode == 0, result.stdout
    assert {command.split(" --out ")[0] for command in mock_survey_settings(result.stdout)} == {"realfake mock-survey"}
    assert all(" --manifest" in command for command in mock_survey_settings(result.stdout))
    (table,) = planned_jobs(result.stdout, "mock_brick_table")
    assert "results/mock/manifest/run.yaml" in job_field(table, "output").split(", ")
    for job in planned_jobs(result.stdout, "mock_brick"):
        brick = re.search(r"brick=(\w+)", job_field(job, "wildcards"))[1]
        outputs = job_field(job, "output").split(", ")
        manifest_files = [path for path in outputs if path.startswith("results/mock/manifest/")]
        assert len(manifest_files) == 3 + 2 * 3 + 1 + 2 + 2
        assert f"results/mock/manifest/{brick[:3]}/{brick}/truth-rs50.fits" in manifest_files
    result = dry_run(workflow_copy, {"mock": {"manifest": True, "injector": "legacysim", "release": "dr9"}})
    assert result.returncode != 0 and "--manifest needs --injector obiwan" in result.stdout


PLAIN_RUN_MOCK = {
    "mock": {"mismatch": "background", "release": "dr9", "injector": "legacysim", "plain_run": True, "bricks": 3},
    "cutouts": {"real_source": "run", "real_run": "file1_rs0_skip0"},
}


def test_a_mock_with_its_plain_run_plans_the_reals_from_the_plain_run_and_the_fakes_from_the_others(workflow_copy):
    result = dry_run(workflow_copy, PLAIN_RUN_MOCK)
    assert result.returncode == 0, result.stdout
    assert all(command.endswith(" --injector legacysim --plain-run") for command in mock_survey_settings(result.stdout))
    plain = "results/mock/legacysim/file1_rs0_skip0"
    for job in planned_jobs(result.stdout, "mock_brick"):
        brick = re.search(r"brick=(\w+)", job_field(job, "wildcards"))[1]
        outputs = set(job_field(job, "output").split(", "))
        assert {
            f"{plain}/tractor/{brick[:3]}/tractor-{brick}.fits",
            f"{plain}/sim/{brick[:3]}/injected-{brick}.fits",
            f"{plain}/coadd/{brick[:3]}/{brick}/legacysurvey-{brick}-image-z.fits.fz",
            f"{plain}/coadd/{brick[:3]}/{brick}/legacysurvey-{brick}-invvar-g.fits.fz",
        } <= outputs
        assert len([path for path in outputs if path.startswith(f"{plain}/")]) == 2 + 2 * 3
    jobs = planned_jobs(result.stdout, "cutouts")
    assert len(jobs) == 6
    for job in jobs:
        kind, brick = (re.search(rf"{name}=(\w+)", job_field(job, "wildcards"))[1] for name in ("kind", "brick"))
        inputs = job_field(job, "input").split(", ")
        command = re.search(r"^Shell command: (.*)$", job, flags=re.MULTILINE)[1]
        assert " --real-run file1_rs0_skip0 --real-source run " in command
        if kind == "real":
            assert sorted(inputs) == sorted(
                [
                    "results/mock/dr5/survey-bricks.fits",
                    f"{plain}/tractor/{brick[:3]}/tractor-{brick}.fits",
                    f"{plain}/sim/{brick[:3]}/injected-{brick}.fits",
                    *(
                        f"{plain}/coadd/{brick[:3]}/{brick}/legacysurvey-{brick}-{product}-{band}.fits.fz"
                        for product in ("image", "invvar")
                        for band in "grz"
                    ),
                ]
            )
        else:
            assert not [path for path in inputs if path.startswith(f"{plain}/")]
            assert len([path for path in inputs if "/sim/" in path]) == 2


def test_the_same_mock_with_its_plain_run_serves_the_release_arm_of_the_same_image_control(workflow_copy):
    """Reals from the DR5-layout tree, the plain run named: the fakes leave it out as with real_source run."""
    overrides = {**PLAIN_RUN_MOCK, "cutouts": {"real_source": "dr5", "real_run": "file1_rs0_skip0"}}
    result = dry_run(workflow_copy, overrides)
    assert result.returncode == 0, result.stdout
    for job in planned_jobs(result.stdout, "cutouts"):
        inputs = job_field(job, "input").split(", ")
        assert not [path for path in inputs if "/file1_rs0_skip0/" in path], inputs
        assert " --real-run file1_rs0_skip0 --real-source dr5 " in re.search(r"^Shell command: (.*)$", job, re.M)[1]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"mock": {"release": "dr9", "injector": "legacysim"}, "cutouts": {"real_source": "run"}},
            "config cutouts.real_source run cuts the reals from the mock's plain legacypipe run file1_rs0_skip0, "
            "which mock.plain_run false does not write: set mock.plain_run true",
        ),
        (
            {**PLAIN_RUN_MOCK, "cutouts": {"real_source": "run", "real_run": "file0_rs0_skip0"}},
            "config cutouts.real_run file0_rs0_skip0: the mock's plain run is file1_rs0_skip0 (mock.plain_run)",
        ),
        (
            {"mock": PLAIN_RUN_MOCK["mock"]},
            "config cutouts.real_run null: the mock's plain run is file1_rs0_skip0 (mock.plain_run), a run without "
            "fakes that the fakes' cutouts must leave out; set cutouts.real_run to it",
        ),
        (
            {"mock": {"plain_run": True}, "cutouts": PLAIN_RUN_MOCK["cutouts"]},
            "config mock.plain_run: the mock's plain run is a legacysim run without fakes: --plain-run needs "
            "--injector legacysim, not obiwan (config mock.plain_run and mock.injector)",
        ),
        (
            {"mock": {"plain_run": True}, "cutouts": PLAIN_RUN_MOCK["cutouts"]},
            "config cutouts.real_source: real source run cuts the reals from a plain legacypipe run of legacysim: "
            "it needs injector legacysim, not obiwan (config cutouts.real_source and input.injector, or "
            "mock.injector",
        ),
    ],
)
def test_plain_run_settings_that_do_not_fit_stop_planning_naming_the_keys(workflow_copy, overrides, message):
    result = dry_run(workflow_copy, overrides)
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split())
    assert "Job stats" not in result.stdout


def test_source_files_with_real_source_run_plans_the_plain_runs_files(workflow_copy, tmp_path):
    overrides = files_source(tmp_path, "1238p245\n")
    tree = tmp_path / "legacysim"
    legacysim_tree(tree, ["1238p245"])
    # A plain run (legacysim without --injected-fn) given file id 9: its injected catalog, empty, is there too.
    shutil.copytree(tree / "file0_rs0_skip0", tree / "file9_rs0_skip0")
    overrides["input"].update(obiwan_dir=str(tree), injector="legacysim")
    overrides["cutouts"] = {"real_source": "run", "real_run": "file9_rs0_skip0"}
    result = dry_run(workflow_copy, overrides)
    assert result.returncode == 0, result.stdout
    jobs = {
        re.search(r"kind=(\w+)", job_field(job, "wildcards"))[1]: job for job in planned_jobs(result.stdout, "cutouts")
    }
    plain, fakes = tree / "file9_rs0_skip0", tree / "file0_rs0_skip0"
    real_inputs = job_field(jobs["real"], "input").split(", ")
    assert str(plain / "tractor" / "123" / "tractor-1238p245.fits") in real_inputs
    assert sum(str(plain / "coadd") in path for path in real_inputs) == 6
    assert not [path for path in real_inputs if str(fakes) in path or str(tmp_path / "dr5" / "coadd") in path]
    sim_inputs = job_field(jobs["sim"], "input").split(", ")
    assert not [path for path in sim_inputs if str(plain) in path]
    assert sum(str(fakes / "coadd") in path for path in sim_inputs) == 6
    # A plain run the tree does not have stops planning, naming the key and the runs it has.
    overrides["cutouts"]["real_run"] = "file8_rs0_skip0"
    result = dry_run(workflow_copy, overrides)
    assert result.returncode != 0
    assert (
        f"config cutouts.real_run: file8_rs0_skip0 is not a run dir of input.obiwan_dir {tree} (its runs: "
        "file0_rs0_skip0, file9_rs0_skip0)" in " ".join(result.stdout.split())
    )
