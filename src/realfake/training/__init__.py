"""Training the classifier (``realfake train``).

| module | responsibility |
| --- | --- |
| ``settings.py`` | ``TrainSettings``, the frozen settings of one run |
| ``shardset.py`` | ``open_shard_set``: the manifest and the shards, checked (no pixels read) |
| ``pipeline.py`` | the per-epoch example order and the tf.data pipeline over memory-mapped shards |
| ``cluster.py`` | the multi-worker cluster from ``TF_CONFIG`` or SLURM |
| ``startup.py`` | waiting for the other workers (with a timeout), and stopping on SIGTERM |
| ``loop.py`` | ``train``: the custom loop, exact resume, checkpoints, TensorBoard, profile, outputs |
| ``trace.py`` | the profiler's XSpace as a Trace Event JSON file |

The model itself is in ``realfake.model``. Importing this package does not
import TensorFlow (``train`` does), so the command line stays quick.
"""

from realfake.training.settings import TrainSettings
from realfake.training.shardset import open_shard_set

__all__ = ["TrainSettings", "train"]


def train(settings: TrainSettings) -> dict:
    """Train or resume; see :func:`realfake.training.loop.train`.

    The shard set is checked before TensorFlow is imported, so bad input fails fast.
    """
    open_shard_set(settings.shards)
    from realfake.training.loop import train as train_in_loop

    return train_in_loop(settings)
