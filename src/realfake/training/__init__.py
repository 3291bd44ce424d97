"""Training the classifier (``realfake train``).

| module | responsibility |
| --- | --- |
| ``settings.py`` | ``TrainSettings``, the frozen settings of one run |
| ``pipeline.py`` | the per-epoch example order and the tf.data pipeline over memory-mapped shards |
| ``cluster.py`` | the multi-worker cluster from ``TF_CONFIG`` or SLURM |
| ``startup.py`` | waiting for the other workers (with a timeout), and stopping on SIGTERM |
| ``loop.py`` | ``run_train``: how the custom loop works (exact resume, atomicity, provenance, multi-worker) |
| ``distribution.py`` | the thread pools and the ``tf.distribute`` strategy, made before training |
| ``steps.py`` | the training and validation steps, summed across replicas |
| ``trainer.py`` | the run: restore, epochs, validation, checkpoints, logs, outputs |
| ``selection.py`` | the best-validation weights in ``best/`` |
| ``checkpoints.py`` | the checkpointed state (running means as metrics), finding the one to resume, moving aside |
| ``logs.py`` | the TensorBoard logs, steps never repeated across restarts |
| ``trace.py`` | the profiler window and its XSpace as a Trace Event JSON file |

The shard set is read through :mod:`realfake.formats.shardset`; ``model.keras`` and ``history.json`` are
written through :mod:`realfake.formats.model` and :mod:`realfake.formats.history`.

The model itself is in ``realfake.model.network``. Importing this package does not
import TensorFlow (``run_train`` does), so the command line stays quick.
"""

from realfake.crossfit import model_view_of
from realfake.formats.shardset import open_shard_set
from realfake.training.settings import TrainSettings

__all__ = ["TrainSettings", "run_train"]


def run_train(settings: TrainSettings) -> dict:
    """Train or resume; see :func:`realfake.training.loop.run_train`.

    The shard set is opened and checked once, before TensorFlow is imported, so bad input fails fast. With a
    cross-fitted shard set the run sees fold ``settings.fold``'s view of it (:func:`realfake.crossfit.model_view_of`).
    """
    shard_set = model_view_of(open_shard_set(settings.shards), settings.fold)
    from realfake.training.loop import run_train as run_train_loop

    return run_train_loop(settings, shard_set)
