"""The classifier: named architectures and the in-model input normalisation.

``build_model(input_shape, config, normalization)`` is a pure builder (Keras
Functional API): stamps in, class probabilities out.

- Input: float32 ``(batch, S, S, C)``, channels-last, the shard set's channels
  (the bands in nanomaggies, then their inverse variances in 1/nanomaggy^2;
  ``docs/shards_format.md``).
- Output: float32 ``(batch, 2)`` softmax probabilities, column 0 = real
  (label 0), column 1 = fake (label 1).

The first layer is :class:`InputNormalization`, built from the training-split
statistics in the shard manifest, so a saved ``model.keras`` is self-contained:
it takes raw shard pixels. The layer also records the identity of that shard
set (``shard_set``, the manifest's ``identity``), which is the one the model
was trained on: ``realfake evaluate`` refuses a model of another shard set.
Reload it with ``keras.saving.load_model(path)`` after ``import realfake.model.network``
(which registers the layer).

Architectures (``MODEL_CONFIGS``, selected by name):

- ``lenet``: the original obiwan code's LeNet-5-like table exactly. Three blocks of
  convolution 7x7, stride 1, 'same' padding, ReLU (18, 36, 54 maps) each
  followed by average pooling with a 7x7 window, stride 2, 'same' padding
  (64 -> 32 -> 16 -> 8 pixels); then dense 64 ReLU and dense 2 softmax. The
  original table lists ReLU after each pooling too; pooling non-negative ReLU
  outputs keeps them non-negative, so that ReLU is the identity and is omitted.
- ``compact`` (the workflow config's choice): VGG-like, three blocks (16, 32, 64 maps) of two
  3x3 convolutions with ReLU, each block followed by 2x2 max pooling
  (64 -> 32 -> 16 -> 8 pixels); dense 64 ReLU, dense 2 softmax. Half the
  FLOPs of ``lenet`` per example. It exists because ``lenet`` does not learn
  the mock survey's controls from a few thousand stamps: the difference
  between fakes and real galaxies (a sharper or wider core) lives in the
  central few pixels, and each 7x7 average pooling mixes it with ~48
  pixels of sky and neighbours, three times over. Max pooling keeps such a
  local signal. Measured on the ``psf`` control (778 training stamps): the
  original ``lenet`` with Adam at 1e-3 loses its ReLUs (dense units never
  active on any stamp go from 31% to 70% within four epochs) and ends with
  P(fake) = 0.50 for every stamp; at 1e-4 it sits at chance for eight epochs
  and reaches 0.73 test accuracy after twenty; the same network with max
  pooling reaches 0.88 after five, ``compact`` 0.95 after four (1500
  stamps).
- ``deep``: VGG-like, four blocks (32, 64, 128, 256 maps) of two 3x3
  convolutions, each followed by batch normalisation and ReLU, then 2x2 max
  pooling (64 -> 4 pixels); dense 128 ReLU, dense 2 softmax. Batch
  normalisation is ``synchronized``: under multi-worker training the batch
  statistics are those of the global batch.

Every piece (maps per block, kernel size, convolutions per block, pooling,
batch normalisation, dense widths) is a field of :class:`ModelConfig`
(``realfake.model.architectures``, which does not import TensorFlow, so the command
line can build settings without starting it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from realfake.conventions import is_inverse_variance
from realfake.errors import RealfakeError
from realfake.model.architectures import COMPACT, DEEP, LENET, MODEL_CONFIGS, ModelConfig, model_config
from realfake.model.views import view_mask

__all__ = [
    "COMPACT",
    "DEEP",
    "LENET",
    "MODEL_CONFIGS",
    "InputNormalization",
    "ModelConfig",
    "Normalization",
    "StampView",
    "build_model",
    "forward_flops_per_example",
    "model_config",
    "normalization_from_manifest",
]

NUM_CLASSES = 2
# Relative depth, in units of this fraction of the stamp's mean inverse variance (see InputNormalization).
DEPTH_SCALE = 0.05


@dataclass(frozen=True)
class Normalization:
    """Per-channel input transform parameters (one entry per channel, in channel order).

    Flux channels: ``asinh((x - center) / scale)`` with center = median and
    scale = robust sigma of the training pixels (nanomaggies). Inverse-variance
    channels: ``x / scale`` with center = 0 and scale = median inverse variance
    of the covered pixels (1/nanomaggy^2).
    """

    channel_names: tuple[str, ...]
    centers: tuple[float, ...]
    scales: tuple[float, ...]
    inverse_variance: tuple[bool, ...]
    shard_set: str = ""
    # Inverse variances relative to each stamp's own mean (see InputNormalization); False only for tests.
    relative_depth: bool = True


def normalization_from_manifest(manifest: Mapping, source: str) -> Normalization:
    """The input transform from a shard manifest's ``normalization.channels`` statistics.

    ``source`` names the manifest file in error messages. Raises RealfakeError
    naming the key when a channel's statistics are missing or unusable (a flux
    channel needs ``mad_sigma`` > 0, an inverse-variance channel ``median`` > 0).
    """
    try:
        channel_names = tuple(manifest["channel_names"])
        statistics = manifest["normalization"]["channels"]
    except (KeyError, TypeError) as error:
        raise RealfakeError(f"{source}: missing key {error} (need channel_names and normalization.channels)") from None
    centers, scales, kinds = [], [], []
    for name in channel_names:
        key = f"normalization.channels.{name}"
        try:
            median = float(statistics[name]["median"])
            mad_sigma = float(statistics[name]["mad_sigma"])
        except (KeyError, TypeError, ValueError):
            raise RealfakeError(f"{source}: {key} needs numeric 'median' and 'mad_sigma'") from None
        if is_inverse_variance(name):
            if not (math.isfinite(median) and median > 0):
                raise RealfakeError(f"{source}: {key}.median must be a positive inverse variance, got {median}")
            centers.append(0.0)
            scales.append(median)
        else:
            if not (math.isfinite(median) and math.isfinite(mad_sigma) and mad_sigma > 0):
                raise RealfakeError(
                    f"{source}: {key} needs a finite median and mad_sigma > 0, got {median}, {mad_sigma}"
                )
            centers.append(median)
            scales.append(mad_sigma)
        kinds.append(is_inverse_variance(name))
    return Normalization(
        channel_names, tuple(centers), tuple(scales), tuple(kinds), shard_set=str(manifest.get("identity") or "")
    )


@keras.saving.register_keras_serializable(package="realfake")
class InputNormalization(keras.layers.Layer):
    """Scale raw shard pixels to values of order one, channel by channel.

    Input and output: float32 ``(batch, S, S, C)``, channels-last.

    - Flux channels (nanomaggies): ``asinh((x - median) / mad_sigma)``. Fluxes
      span orders of magnitude (sky noise ~1e-3 nmgy, bright galaxy cores
      ~1e2); asinh is linear within a few sigma of the sky, so the noise keeps
      its shape, and logarithmic for bright sources, so one bright star does
      not dominate the activations.
    - Inverse-variance channels (1/nanomaggy^2): with ``relative_depth``
      (every model realfake builds), ``asinh((x / m - 1) / DEPTH_SCALE)``, m
      the mean inverse variance of the stamp's own covered pixels in that
      channel: the depth of each pixel relative to the stamp around it, in
      units of 5% (0: the stamp's mean depth; no coverage, x = 0, gives
      asinh(-20) = -3.7, as far from it as a chip gap should be). Depth
      varies by tens of percent from stamp to stamp (the CCD pattern), so a
      source's own variance folded into the inverse variance (a dip of a few
      percent at its centre, as some obiwan versions make) is invisible on a
      global scale. Measured on the ``ivar`` control (1272 training stamps):
      a CNN given ``x / median`` stayed at AUC 0.50, and at 0.55 validation
      accuracy given ``x / m``, while the central-to-ring ratio of the inverse
      variance alone reaches AUC 0.85; in units of 5% the same CNN reaches
      0.92 validation accuracy. The stamp's overall depth still shows in the
      noise of its flux channels. Without ``relative_depth`` (models saved
      before it): ``x / median`` of the training split, 0 staying 0.

    ``median`` and ``mad_sigma`` are the training split's statistics from the
    shard manifest (``normalization_from_manifest``); they are stored in the
    layer config, so a saved model carries its own normalisation, with
    ``shard_set``, the identity of the shard set they come from ("" if unknown).
    """

    def __init__(
        self,
        channel_names: Sequence[str],
        centers: Sequence[float],
        scales: Sequence[float],
        inverse_variance: Sequence[bool],
        shard_set: str = "",
        relative_depth: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.shard_set = str(shard_set)
        self.relative_depth = bool(relative_depth)
        lengths = {len(channel_names), len(centers), len(scales), len(inverse_variance)}
        if len(lengths) != 1:
            raise ValueError("InputNormalization: channel_names, centers, scales and inverse_variance differ in length")
        self.channel_names = [str(name) for name in channel_names]
        self.centers = [float(value) for value in centers]
        self.scales = [float(value) for value in scales]
        self.inverse_variance = [bool(value) for value in inverse_variance]
        self._center = np.asarray(self.centers, dtype="float32")
        self._inverse_scale = (1.0 / np.asarray(self.scales, dtype="float64")).astype("float32")
        self._is_flux = np.logical_not(np.asarray(self.inverse_variance, dtype=bool))

    def call(self, inputs):
        scaled = (inputs - self._center) * self._inverse_scale
        if self.relative_depth:
            # The mean of each channel over the stamp's covered pixels (an uncovered stamp keeps 0).
            covered = keras.ops.cast(inputs > 0, inputs.dtype)
            mean = keras.ops.sum(inputs * covered, axis=(1, 2), keepdims=True) / keras.ops.maximum(
                keras.ops.sum(covered, axis=(1, 2), keepdims=True), 1.0
            )
            relative = inputs / keras.ops.where(mean > 0, mean, 1.0)
            depth = keras.ops.arcsinh((relative - 1.0) / DEPTH_SCALE)
            return keras.ops.where(self._is_flux, keras.ops.arcsinh(scaled), depth)
        return keras.ops.where(self._is_flux, keras.ops.arcsinh(scaled), scaled)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            channel_names=self.channel_names,
            centers=self.centers,
            scales=self.scales,
            inverse_variance=self.inverse_variance,
            shard_set=self.shard_set,
            relative_depth=self.relative_depth,
        )
        return config


@keras.saving.register_keras_serializable(package="realfake")
class StampView(keras.layers.Layer):
    """Hide part of a normalised stamp (:mod:`realfake.model.views`): multiply by the view's 0/1 mask.

    Input and output: float32 ``(batch, S, S, C)``. The layer records the
    view's name, so a saved model says which view it was trained on.
    """

    def __init__(self, view: str, stamp_size: int, channel_names: Sequence[str], **kwargs):
        super().__init__(**kwargs)
        self.view = str(view)
        self.stamp_size = int(stamp_size)
        self.channel_names = [str(name) for name in channel_names]
        self._mask = view_mask(self.view, self.stamp_size, self.channel_names)

    def call(self, inputs):
        return inputs * self._mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(view=self.view, stamp_size=self.stamp_size, channel_names=self.channel_names)
        return config


def build_model(
    input_shape: tuple[int, int, int], config: ModelConfig, normalization: Normalization, view: str = "full"
) -> keras.Model:
    """The classifier for stamps of ``input_shape`` = (S, S, C); see the module docstring.

    ``view`` (:mod:`realfake.model.views`): with another than ``full``, a
    :class:`StampView` layer named ``view`` follows the normalisation, and one
    named ``view_input`` precedes it (a hidden inverse-variance pixel is then 0,
    no coverage, and stays out of the stamp's mean depth).
    Layer names: ``normalization``, ``block{i}_conv{j}`` (and ``block{i}_bn{j}``,
    ``block{i}_relu{j}`` with batch normalisation), ``block{i}_pool``,
    ``flatten``, ``dense{k}``, ``probabilities``; i, j, k count from 1.
    """
    if len(normalization.channel_names) != input_shape[-1]:
        raise RealfakeError(
            f"model input has {input_shape[-1]} channels but the normalisation has "
            f"{len(normalization.channel_names)} ({', '.join(normalization.channel_names)})"
        )
    inputs = keras.Input(shape=input_shape, dtype="float32", name="stamps")
    features = inputs
    if view != "full":
        # Hidden before the normalisation too, so that no hidden pixel enters a stamp's mean depth.
        features = StampView(view, input_shape[0], normalization.channel_names, name="view_input")(features)
    features = InputNormalization(
        normalization.channel_names,
        normalization.centers,
        normalization.scales,
        normalization.inverse_variance,
        shard_set=normalization.shard_set,
        relative_depth=normalization.relative_depth,
        name="normalization",
    )(features)
    if view != "full":
        features = StampView(view, input_shape[0], normalization.channel_names, name="view")(features)
    pooling_layer = keras.layers.AveragePooling2D if config.pooling == "average" else keras.layers.MaxPooling2D
    for block, maps in enumerate(config.conv_maps, start=1):
        for conv in range(1, config.convs_per_block + 1):
            if config.batch_norm:
                # The bias is redundant before batch normalisation's own offset.
                features = keras.layers.Conv2D(
                    maps, config.kernel_size, padding="same", use_bias=False, name=f"block{block}_conv{conv}"
                )(features)
                features = keras.layers.BatchNormalization(synchronized=True, name=f"block{block}_bn{conv}")(features)
                features = keras.layers.ReLU(name=f"block{block}_relu{conv}")(features)
            else:
                features = keras.layers.Conv2D(
                    maps, config.kernel_size, padding="same", activation="relu", name=f"block{block}_conv{conv}"
                )(features)
        features = pooling_layer(
            pool_size=config.pool_size, strides=config.pool_stride, padding="same", name=f"block{block}_pool"
        )(features)
    features = keras.layers.Flatten(name="flatten")(features)
    for index, units in enumerate(config.dense_units, start=1):
        features = keras.layers.Dense(units, activation="relu", name=f"dense{index}")(features)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(features)
    return keras.Model(inputs, outputs, name=config.name)


def forward_flops_per_example(model: keras.Model) -> int:
    """Multiply-adds x 2 of one example's forward pass through convolutions and dense layers.

    Counts ``2 * H_out * W_out * k_h * k_w * C_in * C_out`` per convolution and
    ``2 * inputs * units`` per dense layer (biases, activations, pooling and
    normalisation are a few percent and left out). A training step costs about
    3x this (forward, and backward for inputs and for weights).
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, maps = layer.output.shape
            kernel_height, kernel_width, channels_in, _ = layer.kernel.shape
            total += 2 * height * width * kernel_height * kernel_width * channels_in * maps
        elif isinstance(layer, keras.layers.Dense):
            inputs, units = layer.kernel.shape
            total += 2 * inputs * units
    return int(total)
