"""The training loop: restore, train with checkpoints and logs, validate, write the outputs.

Exact resume. The checkpoint (``tf.train.Checkpoint``, ``ckpts/ckpt-<global
step>``) holds the model, the optimizer (Adam's moments and iteration count),
the completed epochs, the batches done in the current epoch, the global step,
the running sums behind the epoch and log-window means, the per-epoch history
and the settings that fix the weight sequence. Because an epoch's batch order
is a pure function of (seed, epoch) (``pipeline.epoch_order``), and so is
its augmentation (``pipeline.epoch_symmetries``), a resumed run rebuilds the
same order and starts at the saved batch; with deterministic ops
the weights are then bitwise those of an uninterrupted run. (Keras'
``BackupAndRestore`` restarts the epoch from batch 0, hence the custom loop.)

Checkpoint atomicity. ``CheckpointManager.save`` writes ``ckpt-N.index`` and
``ckpt-N.data-*`` in full (TensorFlow writes the shards under ``ckpt-N_temp/``
and then merges them into those files), and only then rewrites the
``ckpts/checkpoint`` pointer with an atomic write-and-rename. A restart reads that pointer, so
a kill during a save leaves the previous checkpoint in use; the next save of
that number overwrites the leftovers. If the pointer is missing or names no
readable checkpoint while checkpoint files exist, the newest one whose every
tensor reads back is resumed (and the pointer rewritten); when none does,
training stops with an error naming the directory rather than overwrite them.
A non-finite loss stops training before any save, so a checkpoint never holds
the diverged state.

Provenance. Each checkpoint records the identity of the shard set it was
trained on (the manifest's ``identity``, :mod:`realfake.shards.build`), and so do
``model.keras`` (in its normalisation layer) and ``history.json``. A
checkpoint of another shard set is never resumed: the run starts from scratch
and moves the previous run's ``ckpts/``, ``logs/``, ``prof/``, ``model.keras``
and ``history.json`` to ``superseded/<old identity>/`` (kept, not deleted: the
old TensorBoard curves stay viewable, and nothing is lost to a mistaken
config; delete the folder when it is not needed). Other settings that change
the weight sequence (``RESUME_KEYS``) must match, or training stops naming
them.

TensorBoard (``training.logs``): ``logs/train`` and ``logs/validation`` at step
= global step, never repeating a step across restarts. Profile
(``training.trace``): ``tf.profiler`` over ``profile_steps``, then a
``trace.json.gz``.

Multi-worker. ``tf.distribute.MultiWorkerMirroredStrategy`` (synchronous
all-reduce of gradients; the cluster from ``training.cluster``). Each replica
computes ``sum(loss over its slice) / global batch``; the all-reduced sum of
gradients is then the single-worker gradient of the mean loss; it agrees with
one worker up to the order of floating-point sums (measured on the test
fixture: weights within 1.4e-6 after 12 Adam steps; Adam's normalised steps
let such differences grow as training proceeds). MWMS works with Keras 3 in
this custom loop (``strategy.run`` around the Keras model and optimizer,
which all-reduces the gradients itself). Only the chief
writes checkpoints (other workers save to a temporary directory they delete,
as TensorFlow's documentation recommends), logs, the profile, ``model.keras``
and ``history.json``, and prints progress. Before the strategy is made every
worker waits, at most ``startup_timeout`` seconds, for all its peers to answer
at their addresses, and otherwise stops naming those that have not
(``training.startup``). SIGTERM (SLURM's time limit) stops any run at once with
status 143; the last checkpoint is kept, and re-running resumes from it.

Threads. ``intra_op_threads`` / ``inter_op_threads`` set TensorFlow's pools
(before TensorFlow starts). On Intel builds with OpenMP (KNL at NERSC) set the
environment before launching, as the original obiwan code did: ``OMP_NUM_THREADS`` = cores
per task, ``KMP_AFFINITY=granularity=fine,compact,1,0``, ``KMP_BLOCKTIME=1``.

Where it is. The thread pools and the strategy: :mod:`~realfake.training.distribution`;
the training and validation steps and their sums across replicas: :mod:`~realfake.training.steps`;
the run itself (restore, epochs, validation, checkpoints, outputs): :mod:`~realfake.training.trainer`;
the best-validation weights: :mod:`~realfake.training.selection`; the checkpointed state (its running
means are Keras metric objects), TensorBoard logs and profiler window:
:mod:`~realfake.training.checkpoints`, :mod:`~realfake.training.logs` and
:mod:`~realfake.training.trace`; ``model.keras`` and ``history.json``:
:mod:`realfake.formats.model` and :mod:`realfake.formats.history`.
"""

from __future__ import annotations

import dataclasses
import os

import keras
import tensorflow as tf

from realfake.formats.shardset import ShardSet
from realfake.model.network import normalization_from_manifest
from realfake.training.cluster import cluster_from_environment
from realfake.training.distribution import configure_threads, make_strategy
from realfake.training.settings import TrainSettings
from realfake.training.startup import SigtermStop
from realfake.training.trainer import Trainer


def run_train(settings: TrainSettings, shard_set: ShardSet) -> dict:
    """Train (or resume training) on ``shard_set`` (opened from ``settings.shards``) and write
    ``settings.out``; returns the history record.

    Outputs: ``ckpts/``, ``logs/``, ``prof/`` (``*.xplane.pb`` and
    ``trace.json.gz``), ``model.keras`` and ``history.json`` (per-epoch train
    and validation loss and accuracy). Raises RealfakeError for bad input, a
    settings mismatch with an existing checkpoint, a non-finite loss, or other
    workers that have not started after ``settings.startup_timeout`` seconds.
    Meanwhile SIGTERM ends the process at once with status 143
    (``training.startup``); a re-run resumes from the last checkpoint.
    """
    normalization = normalization_from_manifest(shard_set.manifest.to_json(), str(shard_set.manifest_path))
    # The model records the view it was trained on (a fold's, with cross-fitting: realfake.crossfit).
    normalization = dataclasses.replace(normalization, shard_set=shard_set.identity)
    cluster = cluster_from_environment(os.environ, settings.cluster_port)
    # Thread pools and the multi-worker runtime must be set before TensorFlow starts.
    configure_threads(settings)
    with SigtermStop(settings.out) as sigterm_stop:
        strategy = make_strategy(cluster, settings.startup_timeout)
        # MultiWorkerMirroredStrategy put TensorFlow's SIGTERM handler in place, which only logs the signal.
        sigterm_stop.install()
        if settings.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(settings.seed)
        trainer = Trainer(settings, shard_set, normalization, cluster, strategy)
        return trainer.run()
