"""The training and validation steps: one global batch through every replica, summed across replicas.

Each replica returns, over its slice of the global batch, a loss sum and its
count of correct predictions: the training step's loss is the sum of the
per-example cross-entropies divided by the global batch size, so the
all-reduced (summed) gradients are those of the global mean loss; the
validation step's is the plain sum. Both steps then sum these over every
replica of every worker the same way (:func:`summed_over_replicas`), so each
worker gets the global values, once per global step.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def make_train_step(
    model, optimizer, strategy: tf.distribute.Strategy, global_batch_size: int, jit_compile: bool = False
):
    """A tf.function ``step(inputs) -> (mean loss over the global batch, correct predictions)``.

    ``inputs`` = (stamps, labels) per replica, from a distributed dataset. Each
    replica's loss is its sum of per-example cross-entropies over the global
    batch size, so the all-reduced (summed) gradients are those of the global
    mean loss. ``jit_compile`` XLA-compiles the forward and backward pass.
    """
    global_batch = float(global_batch_size)

    def gradients_of(stamps, labels):
        with tf.GradientTape() as tape:
            probabilities = model(stamps, training=True)
            per_example = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
            loss = tf.reduce_sum(per_example) / global_batch
        gradients = tape.gradient(loss, model.trainable_variables)
        return loss, count_correct(labels, probabilities), gradients

    if jit_compile:
        gradients_of = tf.function(gradients_of, jit_compile=True)

    def replica_step(stamps, labels):
        loss, correct, gradients = gradients_of(stamps, labels)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss, correct

    @tf.function
    def train_step(inputs):
        return summed_over_replicas(strategy, strategy.run(replica_step, args=inputs))

    return train_step


def make_validation_step(model, strategy: tf.distribute.Strategy):
    """A tf.function ``step(inputs) -> (summed loss over the batch, correct predictions)``, ``inputs`` as for
    :func:`make_train_step`; batches may be short (the last of the split)."""

    def replica_step(stamps, labels):
        probabilities = model(stamps, training=False)
        loss_sum = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(labels, probabilities))
        return loss_sum, count_correct(labels, probabilities)

    @tf.function(reduce_retracing=True)
    def validation_step(inputs):
        return summed_over_replicas(strategy, strategy.run(replica_step, args=inputs))

    return validation_step


def summed_over_replicas(strategy: tf.distribute.Strategy, per_replica: tuple) -> tuple:
    """Each of the ``per_replica`` values (what ``strategy.run`` returned) summed over all replicas of all
    workers, in order."""
    return tuple(strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in per_replica)


def count_correct(labels, probabilities):
    """The number of ``labels`` (int, (n,)) that the class of highest ``probabilities`` ((n, classes)) matches,
    as float32."""
    predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    return tf.reduce_sum(tf.cast(tf.equal(predicted, tf.cast(labels, tf.int32)), tf.float32))
