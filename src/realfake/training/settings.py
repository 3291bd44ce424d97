"""``TrainSettings``: everything one training run depends on, checked once (no TensorFlow import)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from realfake.errors import RealfakeError
from realfake.model.architectures import COMPACT, ModelConfig
from realfake.model.views import check_view

# Settings that change the sequence of weights; a checkpoint only resumes a run with the same values.
RESUME_KEYS = ("batch_size", "model", "seed", "learning_rate", "shuffle_shards", "augment", "view", "steps_per_epoch")
# Which weights model.keras holds: those of the epoch with the lowest validation loss, or the last epoch's.
SELECT_CHOICES = ("best_validation", "last")


@dataclass(frozen=True)
class TrainSettings:
    """One training run (``realfake train``).

    - ``shards``: the shard set directory (``docs/shards_format.md``).
    - ``out``: output directory: ``ckpts/``, ``logs/`` (TensorBoard: ``train/``,
      ``validation/``), ``prof/``, ``best/``, ``model.keras``, ``history.json``.
    - ``epochs``: total epochs; a resumed run trains up to this many.
    - ``steps_per_epoch``: at most this many steps per epoch, each epoch's
      batches taken from the start of its order (0: every whole batch of the
      training split). For a fixed cost per epoch on a very large split, and
      for benchmarks that time a fixed number of steps.
    - ``batch_size``: global batch (all workers together); must divide by the
      number of workers.
    - ``model``: the architecture (``realfake.model.network.MODEL_CONFIGS``): ``compact``
      by default, the one that learns the mock's controls (``lenet``, the original
      obiwan code's table, is ``--model lenet`` away; ``realfake.model.network`` has the
      measurements).
    - ``seed``: initial weights, the per-epoch example order and augmentation.
    - ``learning_rate``: Adam's (constant) learning rate.
    - ``checkpoint_every``: steps between mid-epoch checkpoints (each epoch's
      end is checkpointed too).
    - ``log_every``: steps between progress lines and TensorBoard train scalars.
    - ``profile_steps``: global steps [start, stop) traced by the profiler;
      None for no profile.
    - ``shuffle_shards``: shards whose examples are shuffled together.
    - ``augment``: draw each training stamp through a random rotation or
      reflection of the pixel grid each epoch (``training.pipeline``); on by
      default (the original obiwan code had none).
    - ``select``: the weights written to ``model.keras``: ``best_validation``
      (the epoch with the lowest loss on the shard set's validation split, kept
      in ``best/``; a well-trained but not over-trained CNN is the more powerful
      test, and every control gets the same chance) or ``last``. Not a resume
      setting: the best epoch is tracked either way.
    - ``view``: what the CNN sees of each stamp (:mod:`realfake.model.views`):
      ``full`` for the verdict, a restricted view for the shortcut audit.
    - ``keep_checkpoints``: checkpoints kept in ``ckpts/``.
    - ``intra_op_threads``, ``inter_op_threads``: TensorFlow's thread pools
      (0 = TensorFlow's default, one per core).
    - ``deterministic``: deterministic ops (bitwise-reproducible runs on CPU), on by
      default; ``--no-deterministic`` trades that for some speed.
    - ``jit_compile``: XLA-compile the forward and backward pass.
    - ``cluster_port``: first port of the workers when the cluster comes from SLURM.
    - ``startup_timeout``: seconds a multi-worker task waits for the others to
      start before it stops with an error naming those missing
      (``training.startup``).
    """

    shards: Path
    out: Path
    epochs: int = 16
    batch_size: int = 32
    steps_per_epoch: int = 0
    model: ModelConfig = COMPACT
    seed: int = 1
    learning_rate: float = 3e-4
    checkpoint_every: int = 50
    log_every: int = 10
    profile_steps: tuple[int, int] | None = (3, 6)
    shuffle_shards: int = 8
    augment: bool = True
    select: str = "best_validation"
    view: str = "full"
    keep_checkpoints: int = 3
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    deterministic: bool = True
    jit_compile: bool = False
    cluster_port: int = 28780
    startup_timeout: float = 600.0

    def __post_init__(self) -> None:
        check_view(self.view)
        if self.select not in SELECT_CHOICES:
            raise RealfakeError(f"select must be one of {', '.join(SELECT_CHOICES)}, got {self.select!r}")
        for key in ("epochs", "batch_size", "checkpoint_every", "log_every", "shuffle_shards", "keep_checkpoints"):
            if getattr(self, key) < 1:
                raise RealfakeError(f"{key} must be at least 1, got {getattr(self, key)}")
        for key in ("intra_op_threads", "inter_op_threads", "steps_per_epoch"):
            if getattr(self, key) < 0:
                raise RealfakeError(f"{key} must be 0 (default) or more, got {getattr(self, key)}")
        if not math.isfinite(self.learning_rate):
            raise RealfakeError(f"learning_rate must be a finite number, got {self.learning_rate}")
        if not self.learning_rate > 0:
            raise RealfakeError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.profile_steps is not None:
            start, stop = self.profile_steps
            if not 0 <= start < stop:
                raise RealfakeError(f"profile_steps must be START,STOP with 0 <= START < STOP, got {start},{stop}")
        if not 0 < self.cluster_port < 65536:
            raise RealfakeError(f"cluster_port must be a TCP port, got {self.cluster_port}")
        if not (math.isfinite(self.startup_timeout) and self.startup_timeout > 0):
            raise RealfakeError(f"startup_timeout must be a positive number of seconds, got {self.startup_timeout}")

    def as_record(self) -> dict:
        """JSON-ready dict (paths as strings, tuples as lists)."""
        record = dataclasses.asdict(self)
        record["shards"] = str(self.shards)
        record["out"] = str(self.out)
        return record

    def resume_record(self) -> dict:
        """The settings a checkpoint must share with the run that resumes it."""
        record = self.as_record()
        return {key: record[key] for key in RESUME_KEYS}
