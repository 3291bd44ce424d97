"""Starting a multi-worker run without hanging, and stopping any run on SIGTERM.

Two ways a training process used to get stuck for good:

- A worker whose peers never start waited forever inside
  ``tf.distribute.MultiWorkerMirroredStrategy``, and there nothing in Python
  can time it out: TensorFlow waits for every task in a C++ call that holds
  the GIL, so no Python thread runs meanwhile (measured: a heartbeat thread
  stops; a gdb stack shows ``TFE_EnableCollectiveOps`` in
  ``CoordinationServiceAgent::WaitForAllTasks``).
- SIGTERM (what SLURM sends at a job's time limit, SIGKILL following after
  ``KillWait``) was swallowed: the strategy installs TensorFlow's own SIGTERM
  handler, which only logs "SIGTERM caught".

So the waiting is done first, here, in Python (:func:`wait_for_peers`):
each task listens on its own cluster address and probes the others' with TCP
connects until all of them answer, then lets go of its port and makes the
strategy. Peers that never answer within the start-up timeout are named in a
RealfakeError (exit status 2 from the command line). Once all have answered,
the strategy forms within a second or so; :func:`exit_if_stuck` is the
backstop should a peer die in that window (faulthandler's watchdog is a C
thread, so it runs with the GIL held elsewhere: it prints the Python
tracebacks, then exits with status 1).

:class:`SigtermStop` puts a Python SIGTERM handler in place (again after the
strategy, which replaced it) that prints one line and ends the process at
once with status 143 (128 + SIGTERM, what a shell reports for a process that
SIGTERM ended). It runs in the main thread between two bytecodes, so it
takes effect within a training step or a checkpoint save. Ending at any moment is safe for the outputs: a checkpoint
becomes the one to resume only when the ``ckpts/checkpoint`` pointer is
rewritten, atomically, after the checkpoint's files are complete;
``model.keras``, ``history.json`` and the trace are written under temporary
names and renamed; a TensorBoard event file cut short is read up to its last
whole record. A re-run of the same command resumes from the last checkpoint,
exactly as after SIGKILL.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from realfake.errors import RealfakeError
from realfake.progress import say
from realfake.training.cluster import ClusterInfo

SIGTERM_EXIT_STATUS = 128 + signal.SIGTERM
PROBE_TIMEOUT_S = 2.0
PROBE_INTERVAL_S = 0.5
# While waiting, a line says who is still missing: first after this many seconds (tasks
# start a few seconds apart in a normal run), then every REPORT_EVERY_S.
FIRST_REPORT_S = 10.0
REPORT_EVERY_S = 60.0
# Peers probed at once (a probe of a host that drops packets takes PROBE_TIMEOUT_S).
PROBE_THREADS = 32
# Peers named one by one in a message; the rest are counted.
NAMED_PEERS = 10


@dataclass(frozen=True)
class Task:
    """One task of the cluster: ``task_type`` ("chief" or "worker"), its index and "host:port"."""

    task_type: str
    task_id: int
    address: str

    def describe(self) -> str:
        return f"{self.task_type} {self.task_id} ({self.address})"


def cluster_tasks(cluster: ClusterInfo) -> tuple[Task, list[Task]]:
    """(this task, the other tasks) of a multi-worker ``cluster``, in the cluster spec's order."""
    if cluster.spec is None:
        raise ValueError("a single process has no peers")
    tasks = [
        Task(task_type, task_id, address)
        for task_type, addresses in cluster.spec.items()
        for task_id, address in enumerate(addresses)
    ]
    this = next(task for task in tasks if (task.task_type, task.task_id) == (cluster.task_type, cluster.task_id))
    return this, [task for task in tasks if task != this]


def host_and_port(address: str) -> tuple[str, int]:
    """``"nid0001:28780"`` -> ("nid0001", 28780); ``"[::1]:28780"`` -> ("::1", 28780)."""
    host, separator, port = address.rpartition(":")
    if not separator or not port.isdigit():
        raise RealfakeError(f"cluster address {address!r} is not HOST:PORT")
    return host.removeprefix("[").removesuffix("]"), int(port)


def probe(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when something accepts a TCP connection at ``address``, else why not, in a few words."""
    try:
        with socket.create_connection(host_and_port(address), timeout=timeout_s):
            return None
    except ConnectionRefusedError:
        return "connection refused"
    except socket.gaierror:
        return "unknown host"
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except OSError as error:
        return error.strerror or type(error).__name__


def unanswered(tasks: list[Task], pool: ThreadPoolExecutor, timeout_s: float = PROBE_TIMEOUT_S) -> dict[Task, str]:
    """The tasks whose address does not answer a TCP connect, each with the reason."""
    reasons = pool.map(lambda task: probe(task.address, timeout_s), tasks)
    return {task: reason for task, reason in zip(tasks, reasons) if reason is not None}


def describe_tasks(reasons: dict[Task, str]) -> str:
    """E.g. "worker 1 (nid0002:28780: connection refused), worker 2 (nid0003:28780: unknown host)"."""
    named = [f"{task.task_type} {task.task_id} ({task.address}: {reason})" for task, reason in reasons.items()]
    if len(named) > NAMED_PEERS:
        named = [*named[:NAMED_PEERS], f"{len(named) - NAMED_PEERS} more"]
    return ", ".join(named)


def wait_for_peers(cluster: ClusterInfo, timeout_s: float, report: Callable[[str], None] | None = None) -> None:
    """Return once every other task of ``cluster`` answers at its address; meanwhile listen on this task's own.

    Listening makes this task visible to the others' probes until it returns
    (TensorFlow's server then takes the port). Raises RealfakeError when this
    task's port is taken, or naming the tasks that have not answered after
    ``timeout_s`` seconds. ``report`` (default: stderr) gets a line when some
    task is still missing after ``FIRST_REPORT_S`` seconds, every
    ``REPORT_EVERY_S`` seconds after, and once all are up.
    """
    report = report or _print_line
    this, peers = cluster_tasks(cluster)
    who = f"{this.task_type} {this.task_id}"
    start = time.monotonic()
    waited = False
    listener = _listen(this, backlog=len(peers) + 1)
    with listener, ThreadPoolExecutor(max_workers=min(PROBE_THREADS, max(len(peers), 1))) as pool:
        waiting = peers
        next_report = FIRST_REPORT_S
        while True:
            missing = unanswered(waiting, pool)
            waiting = list(missing)
            elapsed = time.monotonic() - start
            if not missing:
                break
            if elapsed >= timeout_s:
                raise RealfakeError(
                    f"multi-worker start-up timed out after {timeout_s:g} s: {describe_tasks(missing)} "
                    f"{'has' if len(missing) == 1 else 'have'} not joined; "
                    f"this is {who} of {cluster.num_workers} tasks from {cluster.source}; "
                    f"check that every task of the job started (--startup-timeout sets the wait)"
                )
            if elapsed >= next_report:
                report(
                    f"{who}: waiting for {describe_tasks(missing)} to start "
                    f"({elapsed:.0f} s of the {timeout_s:g} s start-up timeout)"
                )
                next_report = elapsed + REPORT_EVERY_S
                waited = True
            time.sleep(min(PROBE_INTERVAL_S, timeout_s - elapsed))
    if waited:
        report(f"{who}: all {cluster.num_workers} tasks are up after {time.monotonic() - start:.1f} s")


def _listen(task: Task, backlog: int) -> socket.socket:
    """A socket listening on ``task``'s port on every interface; ``backlog`` connections queue unaccepted.

    Each peer connects once it is waiting (it stops probing a task that
    answered), so a backlog of the number of peers needs no accepting.
    """
    _, port = host_and_port(task.address)
    try:
        if socket.has_dualstack_ipv6():
            return socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True, backlog=backlog)
        return socket.create_server(("", port), backlog=backlog)
    except OSError as error:
        raise RealfakeError(
            f"{task.describe()}: cannot listen on port {port} ({error.strerror}); is another training run using it?"
        ) from None


@contextlib.contextmanager
def exit_if_stuck(timeout_s: float) -> Iterator[None]:
    """End the process (Python tracebacks on stderr, then status 1) unless the block finishes within ``timeout_s``.

    For calls into TensorFlow that wait with the GIL held, which no Python
    thread can interrupt: faulthandler's watchdog is a C thread. (There is one
    such watchdog per process: this replaces, then cancels, any other.)
    """
    faulthandler.dump_traceback_later(timeout_s, exit=True, file=sys.__stderr__)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


class SigtermStop:
    """While entered: SIGTERM prints one line on stderr and ends the process at once with status 143.

    ``out`` is named in that line (the run's output directory, where the
    checkpoints are). Call :meth:`install` again after anything that puts its
    own SIGTERM handler in place (``MultiWorkerMirroredStrategy`` does). Only
    the main thread may set signal handlers; entered from another thread,
    this does nothing. On exit the previous handler is put back.
    """

    def __init__(self, out: Path):
        self.line = (
            f"SIGTERM received: stopping now; re-run the same command to resume from the last checkpoint in {out}"
        )
        self.active = False
        self.previous = signal.SIG_DFL

    def __enter__(self) -> SigtermStop:
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            previous = signal.getsignal(signal.SIGTERM)
            # None: a handler not set from Python, which cannot be put back; the default can.
            self.previous = signal.SIG_DFL if previous is None else previous
            self.install()
        return self

    def install(self) -> None:
        if self.active:
            signal.signal(signal.SIGTERM, self._stop)

    def __exit__(self, *exception) -> None:
        if self.active:
            signal.signal(signal.SIGTERM, self.previous)
            self.active = False

    def _stop(self, signal_number, frame) -> None:
        _print_line(self.line)
        # Now, wherever the main thread is: no clean-up that could wait on the other workers.
        os._exit(SIGTERM_EXIT_STATUS)


def _print_line(line: str) -> None:
    say("train", line)
