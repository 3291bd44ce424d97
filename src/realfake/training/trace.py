"""Profiler output as a Trace Event JSON file (chrome://tracing, Perfetto).

``tf.profiler.experimental`` (TF 2.21) writes only
``<logdir>/plugins/profile/<run>/<host>.xplane.pb``: an ``XSpace`` protobuf
(``tensorflow.tsl.profiler.protobuf.xplane_pb2``, shipped with TensorFlow).
An XSpace holds planes (``/host:CPU``, devices), each with lines (threads),
each with events: a metadata id (whose metadata gives the name, e.g.
``model/block1_conv1/Relu:_MklNativeFusedConv2D``), an offset from the line's
start in picoseconds and a duration in picoseconds.

:func:`xspace_to_trace_events` turns that into the Trace Event format: one
complete event ``{"name", "ph": "X", "ts", "dur", "pid", "tid"}`` per XEvent
(microseconds; pid = plane, tid = line), with ``"M"`` metadata events naming
processes and threads. TensorBoard's profile plugin reads the ``.xplane.pb``
itself; this file is for the original obiwan code's chrome://tracing workflow.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from realfake.atomic import atomic_output

PICOSECONDS_PER_MICROSECOND = 1_000_000
TRACE_NAME = "trace.json.gz"


def xspace_to_trace_events(xspace, first_pid: int = 0) -> list[dict]:
    """Trace events of one XSpace; planes get pids ``first_pid, first_pid + 1, ...``."""
    events = []
    for plane_index, plane in enumerate(xspace.planes):
        if not plane.lines:
            continue
        pid = first_pid + plane_index
        process_name = plane.name if not xspace.hostnames else f"{xspace.hostnames[0]} {plane.name}"
        events.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": process_name}})
        for tid, line in enumerate(plane.lines):
            thread_name = line.display_name or line.name or str(line.id)
            events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": thread_name}})
            line_start_ps = line.timestamp_ns * 1000
            for event in line.events:
                metadata = plane.event_metadata.get(event.metadata_id)
                name = metadata.name if metadata is not None and metadata.name else f"event {event.metadata_id}"
                record = {
                    "name": name,
                    "ph": "X",
                    "ts": (line_start_ps + event.offset_ps) / PICOSECONDS_PER_MICROSECOND,
                    "dur": event.duration_ps / PICOSECONDS_PER_MICROSECOND,
                    "pid": pid,
                    "tid": tid,
                }
                if metadata is not None and metadata.display_name and metadata.display_name != name:
                    record["args"] = {"op": metadata.display_name}
                events.append(record)
    return events


def latest_xplane_files(profile_directory: Path) -> list[Path]:
    """The ``.xplane.pb`` files of the newest run under ``profile_directory/plugins/profile``."""
    runs = sorted(path for path in (Path(profile_directory) / "plugins" / "profile").glob("*") if path.is_dir())
    for run in reversed(runs):
        files = sorted(run.glob("*.xplane.pb"))
        if files:
            return files
    return []


def write_trace_json(xplane_files: list[Path], output: Path) -> int:
    """Convert XSpace files to one gzipped Trace Event JSON file (written atomically); returns the event count."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    events = []
    for path in xplane_files:
        xspace = xplane_pb2.XSpace()
        xspace.ParseFromString(Path(path).read_bytes())
        events.extend(xspace_to_trace_events(xspace, first_pid=1 + max((event["pid"] for event in events), default=-1)))
    with atomic_output(output) as temporary:
        with gzip.open(temporary, "wt", encoding="utf-8") as stream:
            json.dump({"traceEvents": events, "displayTimeUnit": "ms"}, stream)
    return sum(event["ph"] == "X" for event in events)


class Profiler:
    """``tf.profiler`` over global steps [start, stop) of a run, then the XSpace as ``trace.json.gz``.

    ``steps`` is the requested window (None: no profile). A run that resumes
    past the window before a trace was written traces the same number of steps
    from one step after where it resumed (leaving out the tracing of the step
    function); once ``directory/trace.json.gz`` exists, nothing more is traced.
    """

    def __init__(self, directory: Path, steps: tuple[int, int] | None, first_step: int, enabled: bool):
        self.directory = Path(directory)
        self.window = None
        self.running = False
        if enabled and steps is not None and not (self.directory / TRACE_NAME).exists():
            start, stop = steps
            if first_step > start:
                start, stop = first_step + 1, first_step + 1 + (stop - start)
            self.window = (start, stop)

    def before_step(self, global_step: int) -> None:
        """Start profiling when the step about to run (``global_step`` done so far) opens the window."""
        import tensorflow as tf

        if self.window is None or self.running or global_step != self.window[0]:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        tf.profiler.experimental.start(str(self.directory))
        self.running = True

    def after_step(self, global_step: int) -> str | None:
        """Stop at the end of the window; returns the line saying what was written, if anything."""
        if self.running and global_step >= self.window[1]:
            return self.stop()
        return None

    def stop(self) -> str | None:
        import tensorflow as tf

        if not self.running:
            return None
        tf.profiler.experimental.stop()
        self.running = False
        self.window = None
        files = latest_xplane_files(self.directory)
        if not files:
            return None
        events = write_trace_json(files, self.directory / TRACE_NAME)
        return f"profile: {len(files)} xplane file(s), {events} events in {self.directory / TRACE_NAME}"
