"""Benchmark planning at survey scale: a dry run with a SLURM profile against a minimal Snakefile.

Usage: .venv/bin/python scripts/bench_dryrun.py [--bricks 100000] [--profile profiles/nersc]
       [--repeat 3] [--workdir DIR]

Writes, in a temporary directory (or --workdir, reused when it already holds a tree
of that size):

- a synthetic DR5 tree and obiwan tree (current layout, one rs dir per brick) of
  empty files for --bricks bricks, and their brick list: planning the cutouts of
  real files looks at the trees on disk (each brick's coadds, tractor catalog and
  rs dirs), so the files must be there, though nothing reads them;
- a copy of the workflow, run as `snakemake -n --profile PROFILE` with
  input.source: files on those trees (with profiles/nersc: the cutouts in batches,
  set-scatter cutouts=100);
- a minimal Snakefile with the same jobs: for every rule of the workflow's dry run,
  the same number of jobs, each with the same input files (the same paths, built by
  string formatting, with no look at the disk) and the same number of outputs, and
  trivial shell commands. It is dry-run with the same profile.

The two dry runs alternate, --repeat times each, in one process tree on one machine;
the medians are compared, of wall-clock time and of CPU time (user + system of the
snakemake process: the steadier of the two where other work shares the machine).
Prints the job counts, the times, and the ratio workflow / minimal (target: at most
1.2). The number of SLURM submissions a real run would make is the jobs of every rule
except the local ones.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPOSITORY = Path(__file__).resolve().parents[1]
WORKFLOW_PARTS = ["Snakefile", "workflow", "config", "profiles", "environment.yml"]
BANDS = ("g", "r", "z")
PRODUCTS = ("image", "invvar")
# The workflow's rules that run on the machine Snakemake runs on, never submitted.
LOCAL_RULES = {"all", "cutouts_batch_bricks"}


def brick_names(count: int) -> list[str]:
    """count distinct DR5-style brick names, in order: 0000p000, 0000p001, ..."""
    return [f"{index // 900:04d}{'pm'[index // 450 % 2]}{index % 450:03d}" for index in range(count)]


def brick_files(dr5: str, obiwan: str, brick: str) -> dict[str, list[str]]:
    """The files the cutouts of one brick read, per kind, as the workflow lists them:
    the brick table, the tractor catalog (real) or the simcat and the tractor catalog
    (sim), then the coadds."""
    directory = brick[:3]
    table = f"{dr5}/survey-bricks.fits"
    coadds = [f"legacysurvey-{brick}-{product}-{band}.fits.fz" for band in BANDS for product in PRODUCTS]
    real = [table, f"{dr5}/tractor/{directory}/tractor-{brick}.fits"]
    real += [f"{dr5}/coadd/{directory}/{brick}/{name}" for name in coadds]
    # The DR5 tractor catalog too: an older-schema simcat would take its Milky Way
    # transmissions from it (this tree's rs dirs have no tractor catalog of their own).
    sim = [table, f"{obiwan}/obiwan/{directory}/{brick}/rs0/simcat-elg-{brick}.fits", real[1]]
    sim += [f"{obiwan}/coadd/{directory}/{brick}/rs0/{name}" for name in coadds]
    return {"real": real, "sim": sim}


def make_survey_tree(root: Path, count: int) -> Path:
    """Empty files where the DR5 and obiwan trees of count bricks keep what the
    cutouts read, and their brick list; returns the brick list. Reused when the
    list already names count bricks."""
    bricks_file = root / "bricks.txt"
    names = brick_names(count)
    if bricks_file.is_file() and bricks_file.read_text().split() == names:
        return bricks_file
    dr5, obiwan = root / "dr5", root / "obiwan"
    made_dirs = set()
    for brick in names:
        for kind_files in brick_files(str(dr5), str(obiwan), brick).values():
            for name in kind_files:
                parent = os.path.dirname(name)
                if parent not in made_dirs:
                    os.makedirs(parent, exist_ok=True)
                    made_dirs.add(parent)
                os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644))
    bricks_file.write_text("".join(f"{brick}\n" for brick in names))
    return bricks_file


def copy_workflow(destination: Path) -> Path:
    destination.mkdir(parents=True)
    for part in WORKFLOW_PARTS:
        source = REPOSITORY / part
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, destination / part)
    return destination


def files_config(root: Path, bricks_file: Path) -> Path:
    """A config file reading the synthetic trees."""
    path = root / "files-config.yaml"
    inputs = {"source": "files", "dr5_dir": str(root / "dr5"), "obiwan_dir": str(root / "obiwan")}
    path.write_text(yaml.safe_dump({"input": {**inputs, "bricks_file": str(bricks_file)}}))
    return path


def dry_run(directory: Path, *arguments: str) -> tuple[float, float, str]:
    """Wall-clock and CPU (user + system) seconds of `snakemake -n ...` in directory,
    and its output; raises when it fails."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY / "src"), environment.get("PYTHONPATH")]))
    shutil.rmtree(directory / ".snakemake", ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [str(Path(sys.executable).parent / "snakemake"), "-n", "--quiet", "rules", *arguments],
        cwd=directory, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        raise RuntimeError(f"snakemake -n in {directory} failed:\n{result.stdout[-5000:]}")
    return wall, cpu, result.stdout


def job_counts(output: str) -> dict[str, int]:
    """{rule: jobs} from the "Job stats" table of a dry run, without the total."""
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    counts = {}
    for line in table.splitlines():
        match = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if match and match[1] != "total":
            counts[match[1]] = int(match[2])
    return counts


def submissions(counts: dict[str, int]) -> int:
    """The SLURM jobs a real run with these job counts submits (local rules excluded)."""
    return sum(jobs for rule, jobs in counts.items() if rule not in LOCAL_RULES)


MINIMAL_SNAKEFILE = """\
# The workflow's jobs with trivial commands: the same rules, jobs and files per job.
configfile: "minimal.yaml"

BRICKS = open(config["bricks_file"]).read().split()
DR5, OBIWAN = config["dr5"], config["obiwan"]
COADDS = [f"{product}-{band}.fits.fz" for band in "grz" for product in ("image", "invvar")]
MARKERS = expand("batches/{kind}/{batch}.done", kind=["real", "sim"], batch=config["batches"])


def batch_inputs(wildcards):
    number, count = map(int, wildcards.batch.split("-of-"))
    bricks = BRICKS[(number - 1) * len(BRICKS) // count : number * len(BRICKS) // count]
    files = [f"{DR5}/survey-bricks.fits"]
    for brick in bricks:
        if wildcards.kind == "real":
            files.append(f"{DR5}/tractor/{brick[:3]}/tractor-{brick}.fits")
            coadd_dir = f"{DR5}/coadd/{brick[:3]}/{brick}"
        else:
            files.append(f"{OBIWAN}/obiwan/{brick[:3]}/{brick}/rs0/simcat-elg-{brick}.fits")
            files.append(f"{DR5}/tractor/{brick[:3]}/tractor-{brick}.fits")
            coadd_dir = f"{OBIWAN}/coadd/{brick[:3]}/{brick}/rs0"
        files += [f"{coadd_dir}/legacysurvey-{brick}-{name}" for name in COADDS]
    return files


localrules: cutouts_batch_bricks


rule all:
    input: MARKERS, "report/index.html"


rule cutouts_batch_bricks:
    input: batch_inputs
    output: "batches/{kind}/{batch}.txt"
    shell: "touch {output}"


rule cutouts_batch:
    input: "batches/{kind}/{batch}.txt"
    output: "batches/{kind}/{batch}.done"
    shell: "touch {output}"


rule shards:
    input: MARKERS, config["bricks_file"]
    output: directory("shards")
    shell: "mkdir {output}"


rule train:
    input: "shards"
    output: "train/model.keras", "train/history.json"
    shell: "touch {output}"


rule predict:
    input: "train/model.keras", "shards"
    output: "evaluate/parts/{part}.parquet"
    shell: "touch {output}"


rule evaluate:
    input: expand("evaluate/parts/{part}.parquet", part=config["parts"]), "train/model.keras", "shards"
    output: "evaluate/predictions.parquet", "evaluate/metrics.json", "evaluate/breakdowns.csv"
    shell: "touch {output}"


rule report:
    input: "evaluate/metrics.json", "evaluate/predictions.parquet", "shards", "train/history.json"
    output: "report/index.html"
    shell: "touch {output}"
"""


def write_minimal_workflow(directory: Path, survey: Path, bricks_file: Path, batches: int, profile: str) -> Path:
    """The minimal Snakefile, its config and a copy of the profile, in directory."""
    directory.mkdir(parents=True)
    settings = {
        "bricks_file": str(bricks_file),
        "dr5": str(survey / "dr5"),
        "obiwan": str(survey / "obiwan"),
        "batches": [f"{index + 1}-of-{batches}" for index in range(batches)],
        "parts": [f"{index + 1}-of-{profile_parts(profile)}" for index in range(profile_parts(profile))],
    }
    (directory / "minimal.yaml").write_text(yaml.safe_dump(settings))
    (directory / "Snakefile").write_text(MINIMAL_SNAKEFILE)
    shutil.copytree(REPOSITORY / profile, directory / profile)
    return directory


def profile_batches(profile: str, bricks: int) -> int:
    """The cutouts batches per kind that the profile asks for, as the workflow counts them."""
    settings = yaml.safe_load((REPOSITORY / profile / "config.v8+.yaml").read_text())
    requested = int(settings.get("set-scatter", {}).get("cutouts", 0))
    return min(requested, bricks)


def profile_parts(profile: str) -> int:
    """The parts of the prediction that the profile asks for (set-scatter predict; 1 by default)."""
    settings = yaml.safe_load((REPOSITORY / profile / "config.v8+.yaml").read_text())
    return int(settings.get("set-scatter", {}).get("predict", 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bricks", type=int, default=100_000, help="bricks in the list (default %(default)s)")
    parser.add_argument("--profile", default="profiles/nersc", help="profile directory (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="dry runs of each (default %(default)s)")
    parser.add_argument("--workdir", type=Path, help="keep the trees here (default: a temporary directory)")
    args = parser.parse_args(argv)

    batches = profile_batches(args.profile, args.bricks)
    if batches == 0:
        parser.error(f"{args.profile} does not batch the cutouts (set-scatter cutouts); nothing to compare")
    with tempfile.TemporaryDirectory(prefix="bench_dryrun-") as scratch:
        root = args.workdir or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        bricks_file = make_survey_tree(root / "survey", args.bricks)
        print(f"synthetic trees of {args.bricks} bricks: {time.perf_counter() - start:.1f} s")
        runs = root / f"runs-{os.getpid()}"
        workflow = copy_workflow(runs / "workflow")
        config = files_config(root / "survey", bricks_file)
        minimal = write_minimal_workflow(runs / "minimal", root / "survey", bricks_file, batches, args.profile)

        times = {"workflow": [], "minimal": []}
        outputs = {}
        for _ in range(args.repeat):
            *measured, outputs["workflow"] = dry_run(workflow, "--profile", args.profile, "--configfile", str(config))
            times["workflow"].append(measured)
            *measured, outputs["minimal"] = dry_run(minimal, "--profile", args.profile)
            times["minimal"].append(measured)
        shutil.rmtree(runs)

    counts = {name: job_counts(output) for name, output in outputs.items()}
    if counts["workflow"] != counts["minimal"]:
        print(f"job counts differ: workflow {counts['workflow']}, minimal {counts['minimal']}", file=sys.stderr)
        return 1
    print(f"jobs per rule: {counts['workflow']} (total {sum(counts['workflow'].values())})")
    print(f"SLURM submissions of a real run: {submissions(counts['workflow'])}")
    ratios = {}
    for column, what in enumerate(("wall-clock", "CPU")):
        medians = {}
        for name in ("workflow", "minimal"):
            values = [measured[column] for measured in times[name]]
            medians[name] = statistics.median(values)
            listed = ", ".join(f"{value:.1f}" for value in values)
            print(f"dry run, {name}, {what}: median {medians[name]:.1f} s ({listed})")
        ratios[what] = medians["workflow"] / medians["minimal"]
    print(
        f"ratio workflow / minimal: {ratios['wall-clock']:.2f} wall-clock, {ratios['CPU']:.2f} CPU (target at most 1.2)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
