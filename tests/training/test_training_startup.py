"""realfake.training.startup: multi-worker start-up with a timeout, and SIGTERM stopping a run.

The unit tests probe sockets of this process. The end-to-end tests (marked
slow) run ``realfake train`` in subprocesses, one worker of a two-worker
TF_CONFIG cluster whose peer never starts, or a single process, and send
them SIGTERM as SLURM does at a job's time limit.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from fixtures.training_runs import child_environment, free_ports, train_command

from realfake.cli import build_parser
from realfake.errors import RealfakeError
from realfake.formats.history import HISTORY_NAME, read_training_record
from realfake.training import TrainSettings
from realfake.training.cluster import ClusterInfo
from realfake.training.startup import SIGTERM_EXIT_STATUS, host_and_port, probe, wait_for_peers

SIGTERM_LINE = "train: SIGTERM received: stopping now; re-run the same command to resume from the last checkpoint in"
TENSORFLOW_SIGTERM_LOG = "SIGTERM caught"
SMALL_RUN = [
    "--epochs", "3", "--batch-size", "16", "--seed", "7", "--checkpoint-every", "3", "--log-every", "2",
    "--model", "lenet", "--profile-steps", "none",
]  # fmt: skip


def listening_socket() -> socket.socket:
    return socket.create_server(("localhost", 0))


def closed_port() -> int:
    """A port nothing listens on (free_ports closes its probes before returning)."""
    return free_ports(1)[0]


def worker_cluster(ports: list[int], index: int = 0) -> ClusterInfo:
    return ClusterInfo({"worker": [f"localhost:{port}" for port in ports]}, "worker", index, source="TF_CONFIG")


def tf_config(ports: list[int], index: int) -> str:
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


# -- peers, probes, settings ---------------------------------------------------------------------


def test_addresses_split_into_host_and_port():
    assert host_and_port("nid0001:28780") == ("nid0001", 28780)
    assert host_and_port("[::1]:28780") == ("::1", 28780)
    with pytest.raises(RealfakeError, match="'nid0001' is not HOST:PORT"):
        host_and_port("nid0001")


def test_a_probe_says_why_an_address_does_not_answer():
    with listening_socket() as listener:
        assert probe(f"localhost:{listener.getsockname()[1]}") is None
    assert probe(f"localhost:{closed_port()}") == "connection refused"


def test_a_timed_out_start_up_names_only_the_tasks_that_never_answered():
    own_port, missing_port = free_ports(2)
    with listening_socket() as started:
        cluster = worker_cluster([own_port, started.getsockname()[1], missing_port])
        reports = []
        start = time.monotonic()
        with pytest.raises(RealfakeError) as raised:
            wait_for_peers(cluster, timeout_s=1.5, report=reports.append)
    assert time.monotonic() - start < 5
    message = str(raised.value)
    assert message.startswith(
        f"multi-worker start-up timed out after 1.5 s: worker 2 (localhost:{missing_port}: connection refused) "
        f"has not joined; this is worker 0 of 3 tasks from TF_CONFIG"
    )
    assert "worker 1" not in message
    assert reports == []  # the first "waiting" line comes only after FIRST_REPORT_S


def test_waiting_ends_when_the_missing_task_starts_and_this_task_answers_meanwhile():
    own_port, late_port = free_ports(2)
    cluster = worker_cluster([own_port, late_port])
    seen_while_waiting = []
    late_listener = []

    def start_late_task():
        seen_while_waiting.append(probe(f"localhost:{own_port}"))
        late_listener.append(socket.create_server(("localhost", late_port)))

    timer = threading.Timer(1.0, start_late_task)
    timer.start()
    start = time.monotonic()
    try:
        wait_for_peers(cluster, timeout_s=30, report=lambda line: None)
    finally:
        timer.join()
        for listener in late_listener:
            listener.close()
    assert 1.0 <= time.monotonic() - start < 5
    assert seen_while_waiting == [None], "the waiting task listens on its own address"
    assert probe(f"localhost:{own_port}") == "connection refused", "and lets go of its port for TensorFlow"


def test_a_taken_port_of_this_task_is_an_error_naming_it():
    with listening_socket() as taken:
        port = taken.getsockname()[1]
        with pytest.raises(RealfakeError, match=rf"worker 0 \(localhost:{port}\): cannot listen on port {port}"):
            wait_for_peers(worker_cluster([port, closed_port()]), timeout_s=1)


def test_the_startup_timeout_is_a_positive_setting_outside_the_resume_record(tmp_path):
    for bad in (0, -1, float("inf"), float("nan")):
        with pytest.raises(RealfakeError, match="startup_timeout must be a positive number of seconds"):
            TrainSettings(shards=tmp_path, out=tmp_path, startup_timeout=bad)
    assert "startup_timeout" not in TrainSettings(shards=tmp_path, out=tmp_path).resume_record()
    arguments = build_parser().parse_args(["train", "--shards", "s", "--out", "o", "--startup-timeout", "15"])
    assert arguments.startup_timeout == 15.0
    assert build_parser().parse_args(["train", "--shards", "s", "--out", "o"]).startup_timeout == 600.0


def test_sigterm_prints_one_line_and_exits_143_and_the_handler_is_put_back(tmp_path):
    script = f"""
import os, signal, time
from pathlib import Path
from realfake.training.startup import SigtermStop
previous = signal.getsignal(signal.SIGTERM)
with SigtermStop(Path({str(tmp_path)!r})):
    pass
assert signal.getsignal(signal.SIGTERM) is previous
with SigtermStop(Path({str(tmp_path)!r})):
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
print("not stopped")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == SIGTERM_EXIT_STATUS == 143
    assert result.stderr == f"{SIGTERM_LINE} {tmp_path}\n"
    assert result.stdout == ""


# -- end to end (subprocesses) ---------------------------------------------------------------------


def start_lonely_worker(shard_directory, out, *arguments) -> tuple[subprocess.Popen, list[int]]:
    """Worker 0 of a two-worker cluster whose worker 1 never starts."""
    ports = free_ports(2)
    process = subprocess.Popen(
        train_command(shard_directory, out, "--epochs", "1", *arguments),
        stderr=subprocess.PIPE,
        text=True,
        env=child_environment(TF_CONFIG=tf_config(ports, 0)),
    )
    return process, ports


@pytest.mark.slow
def test_a_worker_whose_peer_never_starts_stops_naming_it(shard_directory, tmp_path):
    start = time.monotonic()
    process, ports = start_lonely_worker(shard_directory, tmp_path / "out", "--startup-timeout", "5")
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 2, stderr[-3000:]
    assert time.monotonic() - start < 60
    assert (
        f"realfake train: error: multi-worker start-up timed out after 5 s: worker 1 (localhost:{ports[1]}: "
        f"connection refused) has not joined; this is worker 0 of 2 tasks from TF_CONFIG" in stderr
    )
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_sigterm_stops_a_worker_waiting_for_its_peer(shard_directory, tmp_path):
    process, ports = start_lonely_worker(shard_directory, tmp_path / "out")
    try:
        for line in process.stderr:
            if f"train: worker 0: waiting for worker 1 (localhost:{ports[1]}: connection refused) to start" in line:
                break
        else:
            pytest.fail("the worker never said it was waiting")
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        rest = process.stderr.read()
        process.wait(timeout=30)
    finally:
        process.kill()
    assert time.monotonic() - sent < 5
    assert process.returncode == SIGTERM_EXIT_STATUS
    assert rest.strip().splitlines()[-1] == f"{SIGTERM_LINE} {tmp_path / 'out'}"
    assert TENSORFLOW_SIGTERM_LOG not in rest


@pytest.mark.slow
def test_sigterm_stops_two_training_workers_despite_tensorflows_own_handler(shard_directory, tmp_path):
    """The strategy installs TensorFlow's SIGTERM handler; training puts this package's back."""
    out = tmp_path / "out"
    ports = free_ports(2)
    processes = [
        subprocess.Popen(
            train_command(shard_directory, out, *SMALL_RUN),
            stderr=subprocess.PIPE,
            text=True,
            env=child_environment(TF_CONFIG=tf_config(ports, index)),
        )
        for index in (0, 1)
    ]
    try:
        for line in processes[0].stderr:
            if "checkpoint saved" in line:
                break
        for process in processes:
            process.send_signal(signal.SIGTERM)
        outputs = [process.communicate(timeout=30)[1] for process in processes]
    finally:
        for process in processes:
            process.kill()
    assert [process.returncode for process in processes] == [SIGTERM_EXIT_STATUS] * 2, outputs[1][-3000:]
    for output in outputs:
        assert output.strip().splitlines()[-1] == f"{SIGTERM_LINE} {out}"
        assert TENSORFLOW_SIGTERM_LOG not in output


@pytest.mark.slow
def test_a_single_process_stopped_by_sigterm_resumes_from_its_checkpoint(shard_directory, tmp_path):
    out = tmp_path / "out"
    process = subprocess.Popen(
        train_command(shard_directory, out, *SMALL_RUN), stderr=subprocess.PIPE, text=True, env=child_environment()
    )
    killed_output = []
    try:
        for line in process.stderr:
            killed_output.append(line)
            if re.search(r"checkpoint saved: .* \(epoch 2 step \d+", line):
                process.send_signal(signal.SIGTERM)
                break
        killed_output.append(process.stderr.read())
        process.wait(timeout=30)
    finally:
        process.kill()
    killed_output = "".join(killed_output)
    assert process.returncode == SIGTERM_EXIT_STATUS, killed_output[-3000:]
    assert killed_output.strip().splitlines()[-1] == f"{SIGTERM_LINE} {out}"
    assert "Traceback" not in killed_output
    assert not (out / "model.keras").exists()
    last_saved = max(int(step) for step in re.findall(r"checkpoint saved: \S+/ckpt-(\d+) ", killed_output))

    resumed = subprocess.run(
        train_command(shard_directory, out, *SMALL_RUN),
        capture_output=True,
        text=True,
        env=child_environment(),
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    resumed_from = re.search(r"resuming from \S+/ckpt-(\d+) at epoch 2", resumed.stderr)
    assert resumed_from is not None, resumed.stderr[-3000:]
    # A save can complete after its line was printed and before the signal; never an older one.
    assert int(resumed_from.group(1)) >= last_saved
    history = read_training_record(out / HISTORY_NAME)
    assert [epoch["epoch"] for epoch in history["epochs"]] == [1, 2, 3]


@pytest.mark.slow
def test_a_peer_that_answers_but_never_joins_tensorflow_ends_start_up_after_the_timeout(shard_directory, tmp_path):
    """The backstop: something listens at worker 1's address, so the wait ends, but TensorFlow's never does."""
    ports = free_ports(2)
    with socket.create_server(("", ports[1])):
        start = time.monotonic()
        result = subprocess.run(
            train_command(shard_directory, tmp_path / "out", "--epochs", "1", "--startup-timeout", "5"),
            capture_output=True,
            text=True,
            env=child_environment(TF_CONFIG=tf_config(ports, 0)),
            timeout=120,
        )
    assert result.returncode == 1, result.stderr[-3000:]
    assert time.monotonic() - start < 60
    assert "Timeout (0:00:05)!" in result.stderr
    assert re.search(r'File ".*realfake/training/distribution\.py", line \d+ in make_strategy', result.stderr)
