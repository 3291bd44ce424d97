"""Named classifier architectures as frozen dataclasses (no TensorFlow import).

``realfake.model.network.build_model`` turns a :class:`ModelConfig` into a Keras model;
the architectures themselves are described in ``realfake.model.network``'s docstring.
Keeping them here lets the command line and ``TrainSettings`` name a model
without importing Keras (several seconds).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from realfake.errors import RealfakeError


@dataclass(frozen=True)
class ModelConfig:
    """One architecture: convolution blocks, then dense layers, then softmax.

    Block ``i`` has ``convs_per_block`` convolutions of ``conv_maps[i]`` maps,
    ``kernel_size`` x ``kernel_size``, stride 1, 'same' padding (each followed by
    batch normalisation when ``batch_norm``, then ReLU), then one pooling layer
    (``pooling`` "average" or "max", window ``pool_size``, stride
    ``pool_stride``, 'same' padding). The depth is ``len(conv_maps)``.
    """

    name: str
    conv_maps: tuple[int, ...]
    kernel_size: int
    convs_per_block: int
    pooling: str
    pool_size: int
    pool_stride: int
    batch_norm: bool
    dense_units: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.conv_maps or any(maps < 1 for maps in self.conv_maps):
            raise RealfakeError(f"model {self.name}: conv_maps must be positive integers, got {self.conv_maps}")
        if any(units < 1 for units in self.dense_units):
            raise RealfakeError(f"model {self.name}: dense_units must be positive integers, got {self.dense_units}")
        for key in ("kernel_size", "convs_per_block", "pool_size", "pool_stride"):
            if getattr(self, key) < 1:
                raise RealfakeError(f"model {self.name}: {key} must be at least 1, got {getattr(self, key)}")
        if self.pooling not in ("average", "max"):
            raise RealfakeError(f"model {self.name}: pooling must be 'average' or 'max', got {self.pooling!r}")


LENET = ModelConfig(
    name="lenet",
    conv_maps=(18, 36, 54),
    kernel_size=7,
    convs_per_block=1,
    pooling="average",
    pool_size=7,
    pool_stride=2,
    batch_norm=False,
    dense_units=(64,),
)
DEEP = ModelConfig(
    name="deep",
    conv_maps=(32, 64, 128, 256),
    kernel_size=3,
    convs_per_block=2,
    pooling="max",
    pool_size=2,
    pool_stride=2,
    batch_norm=True,
    dense_units=(128,),
)
COMPACT = ModelConfig(
    name="compact",
    conv_maps=(16, 32, 64),
    kernel_size=3,
    convs_per_block=2,
    pooling="max",
    pool_size=2,
    pool_stride=2,
    batch_norm=False,
    dense_units=(64,),
)
MODEL_CONFIGS = {config.name: config for config in (LENET, DEEP, COMPACT)}


def model_config(name: str, **overrides) -> ModelConfig:
    """The named architecture with some fields replaced (``None`` values are ignored).

    Raises RealfakeError naming the model for an unknown name or a bad value.
    """
    if name not in MODEL_CONFIGS:
        raise RealfakeError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODEL_CONFIGS))}")
    changes = {key: value for key, value in overrides.items() if value is not None}
    unknown = set(changes) - {field.name for field in dataclasses.fields(ModelConfig)}
    if unknown:
        raise RealfakeError(f"model {name}: unknown setting(s) {', '.join(sorted(unknown))}")
    return dataclasses.replace(MODEL_CONFIGS[name], **changes)
