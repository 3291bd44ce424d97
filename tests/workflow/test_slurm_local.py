"""The local single-node SLURM cluster of scripts/slurm_local.sh runs real jobs.

The session fixture slurm_cluster (tests/conftest.py) starts the cluster (installing
slurm-wlm and munge on first use, a no-op when it already runs with the same
configuration) and leaves it running: the workflow tests under the SLURM profiles
(tests/workflow/test_slurm_workflow.py) use it too. A failing start is a test failure, never
a skip.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fixtures import REPOSITORY

pytestmark = pytest.mark.slurm

REPO = REPOSITORY
SCRIPT = REPO / "scripts" / "slurm_local.sh"

JOB_TIMEOUT_S = 120


def _run(args: list[str], timeout: float = JOB_TIMEOUT_S, cwd: Path | None = None):
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _explain(proc: subprocess.CompletedProcess) -> str:
    return (
        f"{' '.join(map(str, proc.args))} exited {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


def test_start_summary_names_the_features(slurm_cluster):
    for feature in ("haswell", "knl", "quad", "cache", "cpu"):
        assert feature in slurm_cluster, slurm_cluster


def test_sbatch_knl_job_runs_and_reports_its_id(slurm_cluster, tmp_path):
    out = tmp_path / "out"
    proc = _run(
        [
            "sbatch",
            "--parsable",
            "--wait",
            "--constraint=knl",
            f"--output={tmp_path}/slurm-%j.out",
            "--wrap",
            f"echo $SLURM_JOB_ID > {out}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, _explain(proc)
    # --parsable prints "jobid" (or "jobid;cluster").
    job_id = proc.stdout.strip().split(";")[0]
    assert job_id.isdigit(), _explain(proc)
    assert out.read_text().strip() == job_id

    # MinJobAge keeps the finished job in squeue, for squeue-based status checks.
    queue = _run(["squeue", "--noheader", "--states=all", "--jobs", job_id, "--format=%i %T %f"])
    assert queue.returncode == 0, _explain(queue)
    assert queue.stdout.split() == [job_id, "COMPLETED", "knl"], queue.stdout


def test_srun_runs_two_ranks(slurm_cluster, tmp_path):
    proc = _run(
        [
            "srun",
            "--nodes=1",
            "--ntasks=2",
            "--constraint=haswell",
            "bash",
            "-c",
            'echo "rank $SLURM_PROCID of $SLURM_NTASKS"',
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, _explain(proc)
    assert sorted(proc.stdout.splitlines()) == ["rank 0 of 2", "rank 1 of 2"], _explain(proc)


def test_status_is_healthy(slurm_cluster):
    proc = _run(["bash", str(SCRIPT), "status"])
    assert proc.returncode == 0, _explain(proc)
    assert "healthy" in proc.stdout.splitlines()[-1]
