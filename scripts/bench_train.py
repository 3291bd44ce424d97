"""Benchmark: training throughput from shards on disk vs in memory, and achieved FLOP/s vs a dense matmul.

Usage: .venv/bin/python scripts/bench_train.py [--shards-train N] [--shard-size N] [--batch-size B]
       [--model NAME] [--pairs P] [--run-steps S] [--jit] [--intra-op-threads N] [--workdir DIR]

In one process, on one synthetic shard set (noise stamps written through
``realfake.formats.shardset.write_shard_set``; by default 4 shards of 512 stamps, the
original obiwan code's 2048-image training set), driving the
training step of ``realfake train`` (``realfake.training.steps.make_train_step``):

1. disk: the training pipeline (``realfake.training.pipeline``: memory-mapped
   shards, per-batch gathers in parallel, prefetch), with the shard files
   evicted from the page cache first (``posix_fadvise(DONTNEED)``), so the
   reads come from the disk;
2. memory: the same examples in the same order, fully loaded, fed by
   ``tf.data.Dataset.from_tensor_slices(...).batch().prefetch()``.

After a warm-up epoch, ``--pairs`` adjacent (memory, disk) runs of
``--run-steps`` timed steps each (after 3 untimed steps), alternating which
goes first. The machine may be shared (other jobs, a VM): short adjacent runs
see the same load, and the median of the per-pair ratios disk/memory ignores
bursts that hit one run. Then achieved training FLOP/s = analytic forward
FLOPs per example (``model.forward_flops_per_example``) x 3 (forward + two
backward products) x the median disk examples/s, divided by the median FLOP/s of a float32
2048x2048 matmul measured in the same run. With ``--jit`` an XLA-compiled
step is also timed on the in-memory data.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
TARGET_DISK_OVER_MEMORY = 0.95
WARMUP_STEPS = 3


def write_noise_shard_set(directory: Path, train_shards: int, shard_size: int) -> Path:
    """A shard set of noise stamps (64 x 64 x 6, grz): what a step costs does not depend on the pixels."""
    import numpy as np
    import pandas as pd

    from realfake.conventions import channel_names
    from realfake.formats.shardset import write_shard_set

    rng = np.random.default_rng(1)
    splits = {}
    for split, count in (("train", train_shards * shard_size), ("validation", shard_size), ("test", shard_size)):
        stamps = rng.normal(0.0, 0.01, (count, 64, 64, 6)).astype(np.float32)
        stamps[..., 3:] = 1e4
        labels = (np.arange(count) % 2).astype(np.int32)
        splits[split] = (stamps, labels, pd.DataFrame({"label": labels}))
    definition = {"benchmark": "scripts/bench_train.py", "train_shards": train_shards, "shard_size": shard_size}
    write_shard_set(directory, splits, channel_names("grz"), definition, shard_size)
    return directory


def evict_from_page_cache(paths) -> None:
    for path in paths:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(descriptor)


def timed_run(step, dataset, batch_size: int) -> float:
    """Examples per second over one pass of ``dataset``, after the warm-up steps."""
    iterator = iter(dataset)
    for _ in range(WARMUP_STEPS):
        float(step(next(iterator))[0])
    count = 0
    start = time.perf_counter()
    for inputs in iterator:
        float(step(inputs)[0])
        count += batch_size
    return count / (time.perf_counter() - start)


def matmul_flops_per_second(tf, size: int = 2048, repeats: int = 20) -> float:
    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    product = tf.function(lambda x, y: tf.linalg.matmul(x, y))
    product(a, b).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        result = product(a, b)
    result.numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards-train", type=int, default=4)
    parser.add_argument("--shard-size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--pairs", type=int, default=12, help="adjacent (memory, disk) runs")
    parser.add_argument("--run-steps", type=int, default=24, help="timed steps per run")
    parser.add_argument("--jit", action="store_true", help="also time an XLA-compiled step (in memory)")
    parser.add_argument("--intra-op-threads", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from realfake.formats.shardset import open_shard_set
    from realfake.model.network import build_model, forward_flops_per_example, model_config, normalization_from_manifest
    from realfake.training.pipeline import ShardReader, epoch_order, training_dataset
    from realfake.training.steps import make_train_step

    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    with tempfile.TemporaryDirectory(dir=args.workdir) as workdir:
        start = time.perf_counter()
        directory = write_noise_shard_set(Path(workdir) / "shards", args.shards_train, args.shard_size)
        written = time.perf_counter() - start
        shard_set = open_shard_set(directory)
        manifest = json.loads(shard_set.manifest_path.read_text())
        keras.utils.set_random_seed(1)
        model = build_model(
            shard_set.stamp_shape, model_config(args.model), normalization_from_manifest(manifest, "manifest.json")
        )
        optimizer = keras.optimizers.Adam(1e-3)
        optimizer.build(model.trainable_variables)
        strategy = tf.distribute.get_strategy()
        step = make_train_step(model, optimizer, strategy, args.batch_size)

        sizes = [shard.examples for shard in shard_set.train]
        order = epoch_order(sizes, seed=1, epoch=0, shuffle_shards=8)
        used = order[: len(order) // args.batch_size * args.batch_size]
        in_memory = [np.load(shard.x) for shard in shard_set.train]
        labels = [np.load(shard.y) for shard in shard_set.train]
        stamps_in_order = np.stack([in_memory[shard][row] for shard, row in used])
        labels_in_order = np.array([labels[shard][row] for shard, row in used], dtype=np.int32)
        memory_dataset = (
            tf.data.Dataset.from_tensor_slices((stamps_in_order, labels_in_order))
            .batch(args.batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )

        def disk_run() -> float:
            evict_from_page_cache([shard.x for shard in shard_set.train])
            reader = ShardReader(shard_set.train)
            dataset = training_dataset(reader, order, args.batch_size, 0).take(WARMUP_STEPS + args.run_steps)
            return timed_run(step, dataset, args.batch_size)

        def memory_run() -> float:
            return timed_run(step, memory_dataset.take(WARMUP_STEPS + args.run_steps), args.batch_size)

        timed_run(step, memory_dataset, args.batch_size)  # warm-up epoch: tracing, oneDNN primitive caches
        disk_rates, memory_rates = [], []
        for pair in range(args.pairs):
            # Adjacent runs see the same machine load; alternating which goes first cancels drifts.
            if pair % 2 == 0:
                memory_rates.append(memory_run())
                disk_rates.append(disk_run())
            else:
                disk_rates.append(disk_run())
                memory_rates.append(memory_run())
        jit_rate = None
        if args.jit:
            jit_step = make_train_step(model, optimizer, strategy, args.batch_size, jit_compile=True)
            jit_rate = timed_run(jit_step, memory_dataset, args.batch_size)
        matmul = statistics.median(matmul_flops_per_second(tf) for _ in range(5))

    disk, memory = statistics.median(disk_rates), statistics.median(memory_rates)
    flops_per_example = 3 * forward_flops_per_example(model)
    achieved = flops_per_example * disk
    examples = len(used)
    measured = args.run_steps * args.batch_size
    gigabytes = examples * int(np.prod(shard_set.stamp_shape)) * 4 / 1e9
    print(
        f"train bench: model {args.model}, {examples} examples ({gigabytes:.2f} GB of stamps) in "
        f"{args.shards_train} shards, batch {args.batch_size}, {args.pairs} pairs of runs of {measured} examples, "
        f"{os.cpu_count()} CPUs, "
        f"intra-op threads {tf.config.threading.get_intra_op_parallelism_threads()} (0 = all); "
        f"fixture written in {written:.1f} s"
    )
    for name, rates, median in (("disk (page cache evicted)", disk_rates, disk), ("memory", memory_rates, memory)):
        print(f"examples/s from {name}: {', '.join(f'{rate:.0f}' for rate in rates)}; median {median:.1f}")
    pair_ratios = [disk_rate / memory_rate for disk_rate, memory_rate in zip(disk_rates, memory_rates)]
    print(
        f"disk / memory: median over adjacent pairs {statistics.median(pair_ratios):.3f} "
        f"(pairs: {', '.join(f'{ratio:.2f}' for ratio in pair_ratios)}); ratio of medians {disk / memory:.3f} "
        f"(target >= {TARGET_DISK_OVER_MEMORY})"
    )
    print(
        f"training FLOPs per example: {flops_per_example / 1e9:.3f} GFLOP (3 x forward); achieved "
        f"{achieved / 1e9:.1f} GFLOP/s; float32 2048^2 matmul {matmul / 1e9:.1f} GFLOP/s; "
        f"achieved / matmul: {achieved / matmul:.3f}"
    )
    if jit_rate is not None:
        print(f"XLA (jit_compile) in memory: {jit_rate:.1f} examples/s, {jit_rate / memory:.2f} x the default step")
    print("the original obiwan code: 2048 examples x 4 epochs in ~3 min on a 68-core KNL node = ~45 examples/s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
