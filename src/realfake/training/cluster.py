"""Which processes train together: the cluster from TF_CONFIG or from SLURM's environment.

- ``TF_CONFIG`` (TensorFlow's own convention) wins when set:
  ``{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}``
  (an optional ``"chief"`` task list is allowed).
- Otherwise, inside ``srun`` with more than one task, the workers are the
  tasks of the job step: hosts from ``SLURM_STEP_NODELIST`` (or
  ``SLURM_JOB_NODELIST``), tasks per host from ``SLURM_STEP_TASKS_PER_NODE``
  (or ``SLURM_TASKS_PER_NODE``), this task's index from ``SLURM_PROCID``.
  Task ``i`` listens on ``port + (its index on its node)``. SLURM's default
  block distribution is assumed (consecutive ranks share a node), as for
  TensorFlow's ``SlurmClusterResolver``; that resolver is not used because it
  runs ``scontrol`` to expand the node list, which this module does itself.
- Otherwise: a single process.

The chief (task ``chief`` 0, or ``worker`` 0 when there is no chief task) is
the only process that writes checkpoints, logs, traces and the final model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from realfake.errors import RealfakeError


@dataclass(frozen=True)
class ClusterInfo:
    """The training cluster as TensorFlow's ClusterSpec dict, and this process's task.

    ``spec`` is None for a single process (no distribution). ``source`` says
    where the cluster came from: "single process", "TF_CONFIG" or "SLURM".
    """

    spec: dict[str, list[str]] | None
    task_type: str = "worker"
    task_id: int = 0
    source: str = "single process"

    def describe(self) -> str:
        """One line for the log, e.g. "2 worker(s) from SLURM; this is worker 1 of nid1:28780, nid2:28780"."""
        if self.spec is None:
            return "1 worker (single process)"
        addresses = ", ".join(address for addresses in self.spec.values() for address in addresses)
        return (
            f"{self.num_workers} worker(s) from {self.source}; this is {self.task_type} {self.task_id} of {addresses}"
        )

    @property
    def num_workers(self) -> int:
        return 1 if self.spec is None else sum(len(addresses) for addresses in self.spec.values())

    @property
    def is_chief(self) -> bool:
        if self.spec is None:
            return True
        if "chief" in self.spec:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_id == 0


def cluster_from_environment(environ: Mapping[str, str], port: int) -> ClusterInfo:
    """The cluster from ``TF_CONFIG``, else from SLURM (more than one task), else a single process."""
    if environ.get("TF_CONFIG", "").strip():
        return cluster_from_tf_config(environ["TF_CONFIG"])
    tasks = environ.get("SLURM_STEP_NUM_TASKS") or environ.get("SLURM_NTASKS")
    if tasks and int(tasks) > 1 and "SLURM_PROCID" in environ:
        return cluster_from_slurm(environ, port)
    return ClusterInfo(spec=None)


def cluster_from_tf_config(text: str) -> ClusterInfo:
    """Parse TF_CONFIG; raises RealfakeError naming TF_CONFIG and the key when malformed."""
    try:
        config = json.loads(text)
        cluster = {str(kind): [str(address) for address in addresses] for kind, addresses in config["cluster"].items()}
        task_type = str(config["task"]["type"])
        task_id = int(config["task"]["index"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise RealfakeError(
            f"TF_CONFIG: expected cluster and task.type/task.index ({type(error).__name__}: {error})"
        ) from None
    unsupported = set(cluster) - {"chief", "worker"}
    if unsupported:
        raise RealfakeError(f"TF_CONFIG: only 'chief' and 'worker' tasks are supported, not {sorted(unsupported)}")
    if task_type not in cluster or not 0 <= task_id < len(cluster[task_type]):
        raise RealfakeError(f"TF_CONFIG: task {task_type} {task_id} is not in the cluster {cluster}")
    return ClusterInfo(cluster, task_type, task_id, source="TF_CONFIG")


def cluster_from_slurm(environ: Mapping[str, str], port: int) -> ClusterInfo:
    """Workers = the SLURM job step's tasks (see the module docstring); raises RealfakeError naming the variable."""

    def variable(*names: str) -> str:
        for name in names:
            if environ.get(name):
                return environ[name]
        raise RealfakeError(f"SLURM environment: {' or '.join(names)} is not set")

    num_tasks = int(variable("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"))
    rank = int(variable("SLURM_PROCID"))
    hosts = expand_nodelist(variable("SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST"))
    tasks_text = environ.get("SLURM_STEP_TASKS_PER_NODE") or environ.get("SLURM_TASKS_PER_NODE")
    if tasks_text:
        tasks_per_host = expand_tasks_per_node(tasks_text)
    else:
        tasks_per_host = [num_tasks // len(hosts) + (index < num_tasks % len(hosts)) for index in range(len(hosts))]
    if len(tasks_per_host) != len(hosts) or sum(tasks_per_host) != num_tasks:
        raise RealfakeError(
            f"SLURM environment: {len(hosts)} nodes with tasks {tasks_per_host} do not add up to {num_tasks} tasks"
        )
    workers = [f"{host}:{port + local}" for host, count in zip(hosts, tasks_per_host) for local in range(count)]
    if not 0 <= rank < num_tasks:
        raise RealfakeError(f"SLURM environment: SLURM_PROCID {rank} is not below the {num_tasks} tasks")
    return ClusterInfo({"worker": workers}, "worker", rank, source="SLURM")


def expand_nodelist(nodelist: str) -> list[str]:
    """SLURM's compressed host list, in order: ``"nid[0010-0012,0020],login1"`` -> nid0010 ... login1.

    Ranges keep their zero padding; several bracket groups in one name
    (``"r[1-2]n[01-02]"``) expand as a product, left to right.
    """
    hosts = []
    for item in _split_top_level(nodelist.strip()):
        hosts.extend(_expand_name(item))
    if not hosts:
        raise RealfakeError(f"SLURM environment: empty node list {nodelist!r}")
    return hosts


def expand_tasks_per_node(text: str) -> list[int]:
    """SLURM's tasks-per-node string: ``"2(x3),1"`` -> [2, 2, 2, 1]."""
    counts = []
    for item in text.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", item)
        if match is None:
            raise RealfakeError(f"SLURM environment: cannot read tasks per node {text!r}")
        counts.extend([int(match[1])] * int(match[2] or 1))
    return counts


def _split_top_level(text: str) -> list[str]:
    items, depth, current = [], 0, ""
    for character in text:
        if character == "[":
            depth += 1
        elif character == "]":
            depth -= 1
        if character == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += character
    if depth != 0:
        raise RealfakeError(f"SLURM environment: unbalanced brackets in node list {text!r}")
    items.append(current)
    return [item for item in items if item]


def _expand_name(name: str) -> list[str]:
    match = re.match(r"([^\[]*)\[([^\]]*)\](.*)", name)
    if match is None:
        return [name]
    prefix, ranges, rest = match.groups()
    expanded = []
    for part in ranges.split(","):
        bounds = part.split("-")
        if len(bounds) == 1:
            values = [bounds[0]]
        elif len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
            width = len(bounds[0])
            values = [str(number).zfill(width) for number in range(int(bounds[0]), int(bounds[1]) + 1)]
        else:
            raise RealfakeError(f"SLURM environment: cannot read node range {part!r} in {name!r}")
        for value in values:
            expanded.extend(prefix + value + tail for tail in _expand_name(rest))
    return expanded
