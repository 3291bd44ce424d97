"""The standard two-sample tests of alibi-detect on realfake's stamps: the baselines of issue 24's power benchmark.

Runs in its own environment, not realfake's: alibi-detect 0.13 pins numpy < 2, pandas < 3, numba < 0.60 and
TensorFlow < 2.19, none of which fits realfake's pinned stack, so it is installed for the benchmark only:

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install "alibi-detect[tensorflow]==0.13.0"
    .venv-bench/bin/python scripts/standard_tests.py STAMPS.npz [--methods mmd c2st lkd] [--out RESULT.json]

``STAMPS.npz`` holds the examples to compare, as realfake's own code prepares them (so that every method sees
the stamps as the CNN does): ``x`` float32 (n, S, S, C), the stamps normalised by the shard set's input transform
(``realfake.evaluation.mmd.normalized_stamps``); ``label`` (n,), fake = 1; ``brick`` (n,), each example's brick.
The reals are the reference sample, the fakes the sample tested. Each method prints one JSON line, and ``--out``
gets them all: its p-value and wall time.

- ``mmd``: ``MMDDrift``, the Gaussian-kernel MMD (median-heuristic bandwidth) on the central ``--pixels`` x
  ``--pixels`` pixels of every channel, with a permutation p-value over ``--permutations`` permutations of all
  examples (alibi-detect permutes globally, not within bricks as realfake's own kernel test does).
- ``c2st``: ``ClassifierDrift``, the classifier two-sample test: a small CNN trained ``--folds`` times, each
  example scored out of fold, the out-of-fold probabilities of fakes and reals compared by the Kolmogorov-Smirnov
  test (alibi-detect's default). Folds are of examples, not bricks.
- ``lkd``: ``LearnedKernelDrift``, the deep-kernel MMD of Liu et al. 2020: a small CNN's features in a Gaussian
  kernel, trained on ``--train-share`` of the examples to maximise the test's power, tested on the rest by
  permutation.

The CNN of ``c2st`` and ``lkd`` is realfake's ``compact`` network (``--network compact``), trained by Adam at
realfake's learning rate, so that they differ from realfake's verdict in how they test (folds of examples, the KS
test, a learned kernel), not in what can learn. The first benchmark used a two-convolution network
(``--network small``), which learned nothing on the demo's examples (AUC 0.52 out of fold on ``psf`` 0.75).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

METHODS = ("mmd", "c2st", "lkd")


def central(x: np.ndarray, pixels: int) -> np.ndarray:
    """The central ``pixels`` x ``pixels`` pixels of each stamp, flattened."""
    first = x.shape[1] // 2 - pixels // 2
    return x[:, first : first + pixels, first : first + pixels, :].reshape(len(x), -1)


def small_cnn(shape: tuple[int, ...], outputs: int, softmax: bool):
    """Two 3x3 convolutions (16, 32 maps), one max pooling, global average pooling: the first baseline network,
    kept to compare with (``--network small``); it does not learn the controls from the demo's examples."""
    import tensorflow as tf

    layers = [
        tf.keras.layers.InputLayer(input_shape=shape),
        tf.keras.layers.Conv2D(16, 3, activation="relu"),
        tf.keras.layers.MaxPool2D(),
        tf.keras.layers.Conv2D(32, 3, activation="relu"),
        tf.keras.layers.GlobalAveragePooling2D(),
        tf.keras.layers.Dense(outputs, activation="softmax" if softmax else None),
    ]
    return tf.keras.Sequential(layers)


def compact_cnn(shape: tuple[int, ...], outputs: int, softmax: bool):
    """realfake's ``compact`` network (realfake.model.network), rebuilt in the benchmark's Keras: three blocks of
    two 3x3 convolutions (16, 32, 64 maps) with ReLU, each followed by 2x2 max pooling, then dense 64 ReLU. The
    standard tests then differ from realfake's verdict in how they test, not in the network."""
    import tensorflow as tf

    layers = [tf.keras.layers.InputLayer(input_shape=shape)]
    for maps in (16, 32, 64):
        layers += [
            tf.keras.layers.Conv2D(maps, 3, padding="same", activation="relu"),
            tf.keras.layers.Conv2D(maps, 3, padding="same", activation="relu"),
            tf.keras.layers.MaxPool2D(),
        ]
    layers += [
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(64, activation="relu"),
        tf.keras.layers.Dense(outputs, activation="softmax" if softmax else None),
    ]
    return tf.keras.Sequential(layers)


NETWORKS = {"compact": compact_cnn, "small": small_cnn}


def run_mmd(reals: np.ndarray, fakes: np.ndarray, args: argparse.Namespace) -> float:
    from alibi_detect.cd import MMDDrift

    detector = MMDDrift(central(reals, args.pixels), backend="tensorflow", p_val=0.05, n_permutations=args.permutations)
    return float(detector.predict(central(fakes, args.pixels))["data"]["p_val"])


def run_c2st(reals: np.ndarray, fakes: np.ndarray, args: argparse.Namespace) -> float:
    from alibi_detect.cd import ClassifierDrift

    detector = ClassifierDrift(
        reals,
        NETWORKS[args.network](reals.shape[1:], 2, softmax=True),
        backend="tensorflow",
        p_val=0.05,
        preds_type="probs",
        train_size=None,
        n_folds=args.folds,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=32,
        seed=args.seed,
        verbose=0,
    )
    return float(detector.predict(fakes)["data"]["p_val"])


def run_lkd(reals: np.ndarray, fakes: np.ndarray, args: argparse.Namespace) -> float:
    from alibi_detect.cd import LearnedKernelDrift
    from alibi_detect.utils.tensorflow.kernels import DeepKernel

    kernel = DeepKernel(NETWORKS[args.network](reals.shape[1:], 16, softmax=False), eps=0.01)
    detector = LearnedKernelDrift(
        reals,
        kernel,
        backend="tensorflow",
        p_val=0.05,
        n_permutations=args.permutations,
        train_size=args.train_share,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=32,
        verbose=0,
    )
    return float(detector.predict(fakes)["data"]["p_val"])


RUNNERS = {"mmd": run_mmd, "c2st": run_c2st, "lkd": run_lkd}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stamps", type=Path, help="the examples (.npz with x, label, brick)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--pixels", type=int, default=16, help="mmd: the central pixels compared (default 16)")
    parser.add_argument("--permutations", type=int, default=200, help="mmd, lkd: permutations (default 200)")
    parser.add_argument("--folds", type=int, default=5, help="c2st: folds of examples (default 5)")
    parser.add_argument("--epochs", type=int, default=5, help="c2st, lkd: training epochs (default 5)")
    parser.add_argument("--network", choices=sorted(NETWORKS), default="compact", help="c2st, lkd: the CNN")
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="c2st, lkd: Adam's (realfake's, 3e-4)")
    parser.add_argument("--train-share", type=float, default=0.75, help="lkd: the kernel's training share")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write every method's result to this JSON file")
    args = parser.parse_args()
    try:
        data = np.load(args.stamps)
        x, labels = np.asarray(data["x"], dtype=np.float32), np.asarray(data["label"])
    except (OSError, KeyError, ValueError) as error:
        sys.exit(f"standard_tests.py: {args.stamps}: not an .npz with x and label ({error})")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(args.seed)
    reals, fakes = x[labels == 0], x[labels == 1]
    results = []
    for method in args.methods:
        started = time.perf_counter()
        p_value = RUNNERS[method](reals, fakes, args)
        result = {"method": method, "p_value": p_value, "seconds": round(time.perf_counter() - started, 1)}
        result.update(real=int(len(reals)), fake=int(len(fakes)))
        print(json.dumps(result), flush=True)
        results.append(result)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
