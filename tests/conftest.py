"""Fixtures shared by several test modules."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fixtures import REALDATA, REPOSITORY

SLURM_SCRIPT = REPOSITORY / "scripts" / "slurm_local.sh"
# Generous: a first start installs packages with apt-get.
SLURM_START_TIMEOUT_S = 600


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """Start (or confirm) the local SLURM cluster of scripts/slurm_local.sh and leave it
    running; return the script's summary line. A failing start is a test failure, never
    a skip: the tests that use this are how CI knows the SLURM profiles work."""
    proc = subprocess.run(
        ["bash", str(SLURM_SCRIPT), "start"],
        capture_output=True,
        text=True,
        timeout=SLURM_START_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"scripts/slurm_local.sh start exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The shared real-data folder; its absence is a failure, not a skip."""
    if not REALDATA.is_dir():
        pytest.fail(f"real test data not found at {REALDATA}")
    return REALDATA


@pytest.fixture(scope="session")
def shard_directory(tmp_path_factory) -> Path:
    """The training tests' synthetic shard set (tests/fixtures/training_shards.py): 3 training shards of 64 stamps, one
    validation and one test shard; batch 16 gives 12 steps per epoch."""
    from fixtures.training_shards import write_shard_set

    return write_shard_set(tmp_path_factory.mktemp("shards") / "shards", train_shards=3, test_shards=1)
