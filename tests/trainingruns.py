"""Running ``realfake train`` in subprocesses, as a user or SLURM would, for the training tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

# Environment variables a cluster comes from; a test's child process starts without them.
CLUSTER_VARIABLES = ("TF_CONFIG", "SLURM_NTASKS", "SLURM_STEP_NUM_TASKS", "SLURM_PROCID")


def child_environment(**extra: str) -> dict:
    environment = {key: value for key, value in os.environ.items() if key not in CLUSTER_VARIABLES}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "2"
    environment.update(extra)
    return environment


def train_command(shards: Path, out: Path, *arguments: str) -> list[str]:
    return [sys.executable, "-m", "realfake.cli", "train", "--shards", str(shards), "--out", str(out), *arguments]


def train_subprocess(shards: Path, out: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        train_command(shards, out, *arguments),
        capture_output=True,
        text=True,
        env=child_environment(),
        timeout=300,
    )


def free_ports(count: int) -> list[int]:
    """Distinct ports free right now (all probes held open together, so none repeats)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("localhost", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()
