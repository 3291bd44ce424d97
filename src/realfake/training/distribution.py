"""Before training: TensorFlow's thread pools and the run's ``tf.distribute`` strategy.

One process trains under the default strategy; a cluster (:mod:`realfake.training.cluster`) under
``tf.distribute.MultiWorkerMirroredStrategy``, made once every task has answered
(:func:`realfake.training.startup.wait_for_peers`; :mod:`realfake.training.startup` says why the waiting is not
left to TensorFlow). Both must happen before TensorFlow starts its runtime, so they come first in
:func:`realfake.training.loop.run_train`.
"""

from __future__ import annotations

import tensorflow as tf

from realfake.errors import RealfakeError
from realfake.training.cluster import ClusterInfo
from realfake.training.settings import TrainSettings
from realfake.training.startup import exit_if_stuck, wait_for_peers


def configure_threads(settings: TrainSettings) -> None:
    """Size TensorFlow's intra-op and inter-op thread pools (0 or None: TensorFlow's default); RealfakeError once
    TensorFlow has started."""
    try:
        if settings.intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(settings.intra_op_threads)
        if settings.inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(settings.inter_op_threads)
    except RuntimeError as error:
        raise RealfakeError(f"thread counts must be set before TensorFlow starts ({error})") from None


def make_strategy(cluster: ClusterInfo, startup_timeout: float) -> tf.distribute.Strategy:
    """The default strategy for one process; for a cluster, MultiWorkerMirroredStrategy once every task is up.

    The waiting happens in ``startup.wait_for_peers`` (see ``training.startup``
    for why not inside TensorFlow), which raises RealfakeError naming the tasks
    missing after ``startup_timeout`` seconds.
    """
    if cluster.spec is None:
        return tf.distribute.get_strategy()
    wait_for_peers(cluster, startup_timeout)
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster.spec), task_type=cluster.task_type, task_id=cluster.task_id, rpc_layer="grpc"
    )
    with exit_if_stuck(startup_timeout):
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
        except (RuntimeError, ValueError) as error:
            raise RealfakeError(f"cannot start multi-worker training for cluster {cluster.spec}: {error}") from None

        @tf.function
        def count_workers():
            return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)

        # A first all-reduce returns only once every worker's collectives answer.
        count_workers()
    return strategy
