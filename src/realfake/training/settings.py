"""``TrainSettings``: everything one training run depends on, checked once (no TensorFlow import)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

from realfake.errors import RealfakeError
from realfake.model.architectures import COMPACT, MODEL_CONFIGS, ModelConfig, model_config
from realfake.model.views import VIEWS
from realfake.settings import check_settings, parse_integers, setting

# Settings that change the sequence of weights; a checkpoint only resumes a run with the same values.
RESUME_KEYS = ("batch_size", "model", "seed", "learning_rate", "shuffle_shards", "augment", "view", "steps_per_epoch")
# Which weights model.keras holds: those of the epoch with the lowest validation loss, or the last epoch's.
SELECT_CHOICES = ("best_validation", "last")


def parse_step_window(text: str) -> tuple[int, int] | None:
    """ "START,STOP" -> (START, STOP); "none" -> None."""
    if text.strip().lower() == "none":
        return None
    start, stop = parse_integers(text)
    return start, stop


def step_window_text(window: tuple[int, int] | None) -> str:
    """(START, STOP) -> "START,STOP"; None -> "none"."""
    return "none" if window is None else ",".join(map(str, window))


@dataclass(frozen=True)
class TrainSettings:
    """One training run (``realfake train``): its outputs in ``out`` are ``ckpts/``, ``logs/`` (TensorBoard:
    ``train/``, ``validation/``), ``prof/``, ``best/``, ``model.keras`` and ``history.json``."""

    shards: Path = setting(help="shard set directory (docs/shards_format.md)")
    out: Path = setting(help="output directory")
    epochs: int = setting(16, help="total epochs; a resumed run trains up to this many", minimum=1)
    batch_size: int = setting(
        32, help="global batch size (all workers together; must divide by the number of workers)", minimum=1
    )
    steps_per_epoch: int = setting(
        0,
        help="at most this many steps per epoch, each epoch's batches taken from the start of its order (0: every "
        "whole batch of the training split); a fixed cost per epoch on a very large split, or a fixed number of "
        "steps to time",
        minimum=0,
    )
    model: ModelConfig = setting(
        COMPACT,
        help="architecture (realfake.model.architectures.MODEL_CONFIGS): compact learns the mock's controls; lenet "
        "is the original obiwan code's table (realfake.model.network has the measurements)",
        choices=tuple(sorted(MODEL_CONFIGS)),
        parse=model_config,
        text=attrgetter("name"),
    )
    seed: int = setting(1, help="initial weights, the per-epoch example order and augmentation", minimum=0)
    learning_rate: float = setting(3e-4, help="Adam's (constant) learning rate", exclusive_minimum=0)
    checkpoint_every: int = setting(
        50, help="steps between mid-epoch checkpoints (each epoch's end is checkpointed too)", minimum=1
    )
    log_every: int = setting(10, help="steps between progress lines and TensorBoard train scalars", minimum=1)
    profile_steps: tuple[int, int] | None = setting(
        (3, 6),
        help="global steps [START, STOP) traced by the profiler, 0 <= START < STOP, or none",
        parse=parse_step_window,
        text=step_window_text,
        metavar="START,STOP",
    )
    shuffle_shards: int = setting(8, help="shards whose examples are shuffled together each epoch", minimum=1)
    augment: bool = setting(
        True,
        help="draw each training stamp through a random rotation or reflection of the pixel grid each epoch "
        "(realfake.training.pipeline; the original obiwan code had none)",
    )
    select: str = setting(
        "best_validation",
        help="weights written to model.keras: best_validation (the epoch with the lowest validation loss, kept in "
        "best/: a well-trained but not over-trained CNN is the more powerful test) or last; not a resume setting, "
        "the best epoch is tracked either way",
        choices=SELECT_CHOICES,
    )
    view: str = setting(
        "full",
        help="what the CNN sees of each stamp (realfake.model.views): full for the verdict, a restricted view for "
        "the shortcut audit",
        choices=VIEWS,
    )
    fold: int | None = setting(
        None,
        help="with a cross-fitted shard set (made with --folds K): the fold whose examples this model scores, 0 to "
        "K - 1; it trains on the other folds (realfake.crossfit). Leave it out for a shard set of one split",
        minimum=0,
    )
    keep_checkpoints: int = setting(3, help="checkpoints kept in ckpts/", minimum=1)
    intra_op_threads: int = setting(0, help="TensorFlow intra-op threads (0: TensorFlow's default)", minimum=0)
    inter_op_threads: int = setting(0, help="TensorFlow inter-op threads (0: TensorFlow's default)", minimum=0)
    deterministic: bool = setting(
        True, help="deterministic ops: a run is reproducible bit for bit on CPU (off: some speed instead)"
    )
    jit_compile: bool = setting(False, help="XLA-compile the forward and backward pass")
    cluster_port: int = setting(
        28780, help="first worker port when the cluster comes from SLURM", minimum=1, maximum=65535
    )
    startup_timeout: float = setting(
        600.0,
        help="multi-worker: how long a task waits for the others to start before it stops, naming those missing "
        "(realfake.training.startup)",
        exclusive_minimum=0,
        unit="seconds",
        metavar="SECONDS",
    )

    def __post_init__(self) -> None:
        check_settings(self)
        if self.profile_steps is not None:
            start, stop = self.profile_steps
            if not 0 <= start < stop:
                raise RealfakeError(f"profile_steps must be START,STOP with 0 <= START < STOP, got {start},{stop}")

    def as_record(self) -> dict:
        """JSON-ready dict (paths as strings, tuples as lists); ``fold`` only for a cross-fitted run's model, so that
        a single split's history is what it was before folds existed."""
        record = dataclasses.asdict(self)
        record["shards"] = str(self.shards)
        record["out"] = str(self.out)
        if self.fold is None:
            del record["fold"]
        return record

    def resume_record(self) -> dict:
        """The settings a checkpoint must share with the run that resumes it."""
        record = self.as_record()
        return {key: record[key] for key in RESUME_KEYS}
