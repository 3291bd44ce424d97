"""The control experiments: the whole workflow on the default mock survey, once per mismatch.

Usage: .venv/bin/python scripts/controls.py [--mismatch none psf size ...] [--bricks N] [--seeds 1 2 ...]
    [--model stars] [--size PIXELS] [--release dr10] [--injector legacysim] [--bands griz] [--through-manifest]
    [--epochs N] [--audit [VIEW ...]] [--real-source dr5 rsdir] [--dtype float32 float16] [--workdir DIR] [--keep]
    [--results-page {verdicts,audit,audit-real-source,seeds,dtype}]

For each mismatch (and each real source), a copy of the workflow (Snakefile,
workflow/, config/, profiles/) runs `snakemake --profile profiles/local` with
the default config except ``mock.mismatch`` (and ``cutouts.real_source``,
``evaluate.audit``), and the verdict is read from
``results/evaluate/metrics.json``. Prints a Markdown table (the AUC with its
95% interval and Mann-Whitney p-value, the outcome against the tolerance, the
minimum detectable AUC, the accuracy with its interval and binomial p-value,
test examples, wall time). With ``--audit`` a second table gives each audited
view's AUC and outcome and the audit's cause; with several ``--seeds`` a table per
seed, and with ``--dtype float32 float16`` a table of the verdict per shard dtype.
``none`` is the negative control (never distinguishable).

``--results-page TABLE`` also writes that table into its block of docs/results/
(scripts/results_page.py): ``verdicts`` (controls.md), ``audit`` and
``audit-real-source`` (audit.md, with ``--audit``), ``seeds`` (sensitivity.md: one
mismatch, several ``--seeds``), ``dtype`` (cost.md: several ``--dtype``). Each page
says which command wrote its tables.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from realfake.formats.evaluation import METRICS_NAME, read_metrics
from realfake.mock.layout import MOCK_PLAIN_RUN

REPOSITORY = Path(__file__).resolve().parents[1]
# src: the report rule takes its captions from the package's prose (src/realfake/report/text).
WORKFLOW_PARTS = ["Snakefile", "workflow", "config", "profiles", "environment.yml", "src"]
DEFAULT_MISMATCHES = ["none", "psf", "size", "profile", "noise"]
AUDIT_VIEWS = ["image_only", "ivar_only", "centre_only", "ring_only"]
# The reals' selection when the mock injects stars (mock.model: stars; planning refuses any other).
STAR_SELECTION = "psf_stars"
# The mock's rules, and the run manifest of its Rubin-like export (mock.manifest), for run_control(through_manifest).
MOCK_RULES = ("mock_brick_table", "mock_brick")
MOCK_MANIFEST = "results/mock/manifest/run.yaml"


def run_control(
    mismatch: str,
    workdir: Path,
    audit: list[str] | None = None,
    real_source: str | None = None,
    match: list[str] | None = None,
    dtype: str | None = None,
    train: dict | None = None,
    targets: tuple[str, ...] = (),
    selection: str | None = None,
    bands: str | None = None,
    through_manifest: bool = False,
    attribution: bool | None = None,
    folds: int | None = None,
    **mock: object,
) -> dict:
    """Run the workflow with ``mock.mismatch = mismatch`` (and any other ``mock`` keys; ``evaluate.audit``,
    ``cutouts.real_source``, ``cutouts.selection``, ``shards.match``, the ``train`` keys, the ``bands``
    (letters: "griz"), ``evaluate.attribution`` and ``evaluate.folds`` (cross-fitting) when given; with
    ``model="stars"`` the selection is ``psf_stars``, as planning requires; with ``plain_run=True``
    ``cutouts.real_run`` names the mock's plain run)
    in ``workdir``, to ``targets`` (none: the whole workflow, report included); return the verdict with
    ``mismatch`` and ``seconds`` added, and ``audit`` (the audit records) and ``audit_cause``.

    ``through_manifest``: the mock is rendered with its Rubin-like export (``mock.manifest``) first, then the
    workflow reads the survey through that export's run manifest (``input.source: manifest``), as a user of
    another injection code would (docs/manifest.md); ``seconds`` is both runs'."""
    overrides: dict = {"mock": {"mismatch": mismatch, **mock}}
    if bands is not None:
        overrides["bands"] = list(bands)
    if train is not None:
        overrides["train"] = dict(train)
    evaluate = {"audit": None if audit is None else list(audit), "attribution": attribution, "folds": folds}
    if any(value is not None for value in evaluate.values()):
        overrides["evaluate"] = {key: value for key, value in evaluate.items() if value is not None}
    if real_source is not None:
        overrides.setdefault("cutouts", {})["real_source"] = real_source
    if mock.get("plain_run"):  # the fakes leave the mock's plain run out, whichever the real source
        overrides.setdefault("cutouts", {})["real_run"] = MOCK_PLAIN_RUN
    if selection is None and mock.get("model") == "stars":
        selection = STAR_SELECTION
    if selection is not None:
        overrides.setdefault("cutouts", {})["selection"] = selection
    if match is not None:
        overrides.setdefault("shards", {})["match"] = list(match)
    if dtype is not None:
        overrides.setdefault("shards", {})["dtype"] = dtype
    if not through_manifest:
        return {"mismatch": mismatch, **run_workflow(workdir, overrides, targets)}
    overrides["mock"]["manifest"] = True
    mock_seconds = run_snakemake(workdir, overrides, ("--until", *MOCK_RULES))
    overrides["input"] = {"source": "manifest", "manifest": MOCK_MANIFEST}
    verdict = run_workflow(workdir, overrides, targets)
    return {"mismatch": mismatch, **verdict, "seconds": mock_seconds + verdict["seconds"]}


def run_workflow(workdir: Path, overrides: dict, targets: tuple[str, ...] = ()) -> dict:
    """Copy the workflow into ``workdir`` and run it with the default config and ``overrides`` to ``targets``
    (none: the default target); return the verdict of results/evaluate/metrics.json with the wall time
    (``seconds``)."""
    elapsed = run_snakemake(workdir, overrides, targets)
    metrics = read_metrics(workdir / "results" / "evaluate" / METRICS_NAME)
    return {
        "seconds": elapsed,
        **metrics["verdict"],
        "audit": metrics.get("audit", []),
        "audit_cause": metrics.get("audit_cause"),
    }


def workflow_identity(root: Path = REPOSITORY) -> str:
    """The SHA-256 of the files a run copies from ``root`` (WORKFLOW_PARTS: the workflow, its config and profiles,
    the package's source), each file's path and bytes in path order; Markdown, compiled Python and the metadata an
    editable install writes (``src/realfake.egg-info``) are left out, since none changes what a run measures and
    the last two differ between checkouts of one commit. A measurement kept across sittings records it, so that
    one made by other code or another config is not mixed in."""
    digest = hashlib.sha256()
    for part in WORKFLOW_PARTS:
        source = root / part
        files = sorted(source.rglob("*")) if source.is_dir() else [source]
        for path in files:
            built = any(name == "__pycache__" or name.endswith(".egg-info") for name in path.parts)
            if not path.is_file() or path.suffix in {".md", ".pyc"} or built:
                continue
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def differences(recorded: dict, wanted: dict) -> str:
    """The settings of a kept measurement that differ from this run's, each as ``key recorded (now wanted)``, for
    the refusal to name; a long value (the workflow's digest, :func:`workflow_identity`) by its first 12
    characters."""

    def shown(value: object) -> str:
        return f"{value[:12]}..." if isinstance(value, str) and len(value) > 16 else repr(value)

    keys = [*wanted, *(key for key in recorded if key not in wanted)]
    return "; ".join(
        f"{key} {shown(recorded.get(key))} (now {shown(wanted.get(key))})"
        for key in keys
        if recorded.get(key) != wanted.get(key)
    )


def run_snakemake(workdir: Path, overrides: dict, targets: tuple[str, ...] = ()) -> float:
    """Copy the workflow into ``workdir`` and run it with the default config and ``overrides`` to ``targets``
    (words before ``--profile``: target files, or ``--until RULE ...``); return the wall time in seconds.
    RuntimeError with the end of Snakemake's output when it fails."""
    workdir.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        source = REPOSITORY / part
        if source.is_dir():
            shutil.copytree(source, workdir / part, dirs_exist_ok=True)
        else:
            shutil.copy2(source, workdir / part)
    override = workdir / "control.yaml"
    override.write_text(yaml.safe_dump(overrides))
    environment = dict(os.environ)
    binaries = Path(sys.executable).parent
    environment["PATH"] = f"{binaries}{os.pathsep}{environment.get('PATH', '')}"
    start = time.perf_counter()
    result = subprocess.run(
        # The targets first: --configfile takes every word after it.
        [str(binaries / "snakemake"), *targets, "--profile", "profiles/local", "--configfile", str(override)],
        cwd=workdir,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"workflow with {overrides} failed:\n{result.stdout[-5000:]}")
    return elapsed


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| mismatch | AUC (95% CI) | AUC p-value | outcome | minimum detectable AUC | test accuracy (95% CI) "
        "| accuracy p-value | test examples | wall time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| `{row['mismatch']}` | {row['auc']:.3f} ({row['auc_low']:.3f}-{row['auc_high']:.3f}) "
            f"| {row['auc_p_value']:.2g} | {row['outcome'].replace('_', ' ')} | {row['minimum_detectable_auc']:.3f} "
            f"| {row['accuracy']:.3f} ({row['accuracy_low']:.3f}-{row['accuracy_high']:.3f}) "
            f"| {row['accuracy_p_value']:.2g} | {row['examples']} | {row['seconds']:.0f} s |"
        )
    return "\n".join(lines)


def audit_table(rows: list[dict]) -> str:
    """Each run's audit: per view and placement column the AUC with its interval and the outcome, and the cause."""
    names = []
    for row in rows:
        names += [record["view"] for record in row["audit"] if record["view"] not in names]
    lines = [
        "| control | " + " | ".join(names) + " | cause |",
        "| --- | " + " | ".join("---" for _ in names) + " | --- |",
    ]
    for row in rows:
        by_name = {record["view"]: record for record in row["audit"]}
        cells = []
        for name in names:
            record = by_name.get(name)
            if record is None or record["auc"] is None:
                cells.append("")
                continue
            cells.append(
                f"{record['auc']:.3f} ({record['auc_low']:.3f}-{record['auc_high']:.3f}) "
                f"{record['outcome'].replace('_', ' ')}"
            )
        lines.append(f"| `{row['mismatch']}` | " + " | ".join(cells) + f" | {row['audit_cause']} |")
    return "\n".join(lines)


def auc_cell(row: dict) -> str:
    """The AUC with its interval, ``0.515 (0.451-0.575)``."""
    return f"{row['auc']:.3f} ({row['auc_low']:.3f}-{row['auc_high']:.3f})"


def seeds_table(rows: list[dict]) -> str:
    """One row per mock seed: the AUC with its interval, the Mann-Whitney p-value, test examples, outcome."""
    lines = [
        "| mock seed | AUC (95% CI) | Mann-Whitney p | test examples | outcome |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['seed']} | {auc_cell(row)} | {row['auc_p_value']:#.2g} | {row['examples']} "
            f"| {row['outcome'].replace('_', ' ')} |"
        )
    return "\n".join(lines)


def dtype_table(rows: list[dict]) -> str:
    """One row per control, one column per shard dtype: the AUC with its interval and the outcome."""
    dtypes = list(dict.fromkeys(row["dtype"] for row in rows))
    controls = list(dict.fromkeys(row["control"] for row in rows))
    by_key = {(row["control"], row["dtype"]): row for row in rows}
    lines = [
        "| control | " + " | ".join(f"{dtype}: AUC (95% CI), outcome" for dtype in dtypes) + " |",
        "| --- | " + " | ".join("---" for _ in dtypes) + " |",
    ]
    for control in controls:
        cells = []
        for dtype in dtypes:
            row = by_key.get((control, dtype))
            cells.append("" if row is None else f"{auc_cell(row)} {row['outcome'].replace('_', ' ')}")
        lines.append(f"| `{control}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --results-page TABLE: the page of docs/results/ and the table written into its block controls.py:TABLE.
RESULTS_TABLES = {
    "verdicts": ("controls.md", markdown_table),
    "audit": ("audit.md", audit_table),
    "audit-real-source": ("audit.md", audit_table),
    "seeds": ("sensitivity.md", seeds_table),
    "dtype": ("cost.md", dtype_table),
}


def results_block(table: str) -> tuple[Path, str]:
    """The page and the block name that ``--results-page table`` writes."""
    return REPOSITORY / "docs" / "results" / RESULTS_TABLES[table][0], f"controls.py:{table}"


def check_results_page(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse, before any run, a --results-page whose table these arguments do not make, or whose block is missing."""
    table = args.results_page
    if table is None:
        return
    # Imported here: tests load this file by its path, without scripts/ (where results_page.py is) on sys.path.
    import results_page

    if table.startswith("audit") and args.audit is None:
        parser.error(f"--results-page {table} needs --audit")
    if table == "seeds" and (len(args.seeds) < 2 or len(args.mismatch) != 1):
        parser.error("--results-page seeds needs one --mismatch and several --seeds")
    if table == "dtype" and len(args.dtype) < 2:
        parser.error("--results-page dtype needs several --dtype values (float32 float16)")
    page, name = results_block(table)
    try:
        results_page.check_blocks(page, [name])
    except (OSError, ValueError) as error:
        parser.error(f"--results-page {table}: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mismatch", nargs="+", default=DEFAULT_MISMATCHES)
    parser.add_argument("--bricks", type=int, default=None, help="mock.bricks (default: the config's, 12)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[None], help="mock.seed values (default: the config's)")
    parser.add_argument(
        "--model",
        choices=["galaxies", "stars"],
        default=None,
        help=f"mock.model (stars: the reals selected with {STAR_SELECTION}; default: the config's, galaxies)",
    )
    parser.add_argument("--size", type=int, default=None, help="mock.size in pixels (default: the config's, 836)")
    parser.add_argument("--release", choices=["dr5", "dr9", "dr10"], default=None, help="mock.release")
    parser.add_argument("--injector", choices=["obiwan", "legacysim"], default=None, help="mock.injector")
    parser.add_argument("--bands", default=None, help="bands as letters, e.g. griz (DR10; default: the config's)")
    parser.add_argument(
        "--through-manifest",
        action="store_true",
        help="read the mock through its Rubin-like export's run manifest (input.source: manifest)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="train.epochs (default: the config's)")
    parser.add_argument(
        "--folds", type=int, default=None, help="evaluate.folds: cross-fitting by brick (default: the config's, 1)"
    )
    parser.add_argument(
        "--audit",
        nargs="*",
        default=None,
        metavar="VIEW",
        help=f"evaluate.audit (no views given: {' '.join(AUDIT_VIEWS)})",
    )
    parser.add_argument(
        "--real-source", nargs="+", default=[None], choices=["dr5", "rsdir", "run"], help="cutouts.real_source values"
    )
    parser.add_argument(
        "--match", nargs="+", default=None, metavar="COLUMN", help="shards.match (default: the config's)"
    )
    parser.add_argument(
        "--dtype", nargs="+", choices=["float32", "float16"], default=[None], help="shards.dtype values"
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directories")
    parser.add_argument(
        "--results-page",
        choices=sorted(RESULTS_TABLES),
        default=None,
        metavar="TABLE",
        help="also write this table into its block of docs/results/: "
        + ", ".join(f"{table} ({page})" for table, (page, _) in RESULTS_TABLES.items()),
    )
    args = parser.parse_args()
    if args.audit is not None and not args.audit:
        args.audit = AUDIT_VIEWS
    check_results_page(parser, args)
    root = Path(tempfile.mkdtemp(prefix="realfake-controls-", dir=args.workdir))
    rows = []
    try:
        for seed in args.seeds:
            for mismatch in args.mismatch:
                for real_source in args.real_source:
                    for dtype in args.dtype:
                        rows.append(run_named_control(root, args, mismatch, seed, real_source, dtype))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"work directories kept in {root}", file=sys.stderr)
    print(markdown_table(rows))
    if args.audit:
        print()
        print(audit_table(rows))
    if len(args.seeds) > 1:
        print()
        print(seeds_table(rows))
    if len(args.dtype) > 1:
        print()
        print(dtype_table(rows))
    if args.results_page is not None:
        import results_page

        page, name = results_block(args.results_page)
        results_page.write_blocks(page, {name: RESULTS_TABLES[args.results_page][1](rows)})


def run_named_control(
    root: Path, args: argparse.Namespace, mismatch: str, seed: int | None, real_source: str | None, dtype: str | None
) -> dict:
    """One control in its own directory under ``root``; its row, named for what differs from the defaults
    (``mismatch`` the full name, ``control`` the name without the dtype)."""
    settings = (
        ("bricks", args.bricks), ("seed", seed), ("model", args.model), ("size", args.size),
        ("release", args.release), ("injector", args.injector),
    )  # fmt: skip
    mock = {key: value for key, value in settings if value is not None}
    named = {**mock, "bands": args.bands, "epochs": args.epochs, "folds": args.folds}
    named = {key: value for key, value in named.items() if value is not None}
    control = "-".join([mismatch, *(f"{key}{value}" for key, value in named.items())])
    if args.through_manifest:
        control += " (through its manifest)"
    if real_source is not None:
        control += f" (reals from {real_source})"
    if args.match is not None:
        control += f" (matched on {', '.join(args.match) or 'nothing'})"
    name = control if dtype is None else f"{control} ({dtype} shards)"
    directory = root / "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    train = {"epochs": args.epochs} if args.epochs else None
    row = run_control(
        mismatch, directory, args.audit, real_source, args.match, dtype, train,
        bands=args.bands, through_manifest=args.through_manifest, folds=args.folds, **mock,
    )  # fmt: skip
    row.update(mismatch=name, control=control, seed=seed, dtype=dtype)
    print(f"{name}: {row['sentence']} ({row['seconds']:.0f} s)", file=sys.stderr, flush=True)
    if args.audit:
        print(f"{name}: audit cause {row['audit_cause']}", file=sys.stderr, flush=True)
    return row


if __name__ == "__main__":
    main()
