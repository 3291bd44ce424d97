"""realfake.model.network: the original obiwan code's LeNet table, a deeper model, the in-model input normalisation."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from fixtures.training_shards import CHANNEL_NAMES, write_shard_set

from realfake.errors import RealfakeError
from realfake.model.network import (
    COMPACT,
    DEEP,
    DEPTH_SCALE,
    LENET,
    InputNormalization,
    Normalization,
    build_model,
    forward_flops_per_example,
    model_config,
    normalization_from_manifest,
)


def pass_through(channels: int) -> Normalization:
    """No normalisation at all: x / 1 for every channel (the original code's raw pixels)."""
    names = tuple(f"c{index}" for index in range(channels))
    return Normalization(names, (0.0,) * channels, (1.0,) * channels, (True,) * channels, relative_depth=False)


@pytest.fixture(scope="module")
def small_shard_set(tmp_path_factory):
    return write_shard_set(tmp_path_factory.mktemp("shards"), train_shards=1, test_shards=1)


@pytest.fixture(scope="module")
def manifest(small_shard_set):
    return json.loads((small_shard_set / "manifest.json").read_text())


def test_lenet_matches_the_seed_table():
    model = build_model((64, 64, 6), LENET, pass_through(6))
    # (layer, feature maps or units, output size) from the original obiwan code's table.
    table = [
        ("block1_conv1", 18, 64),
        ("block1_pool", 18, 32),
        ("block2_conv1", 36, 32),
        ("block2_pool", 36, 16),
        ("block3_conv1", 54, 16),
        ("block3_pool", 54, 8),
    ]
    for name, maps, size in table:
        assert tuple(model.get_layer(name).output.shape) == (None, size, size, maps), name
    for block in (1, 2, 3):
        conv = model.get_layer(f"block{block}_conv1")
        assert conv.kernel_size == (7, 7) and conv.strides == (1, 1) and conv.activation.__name__ == "relu"
        pool = model.get_layer(f"block{block}_pool")
        assert isinstance(pool, keras.layers.AveragePooling2D)
        assert pool.pool_size == (7, 7) and pool.strides == (2, 2)
    assert tuple(model.get_layer("dense1").output.shape) == (None, 64)
    assert model.get_layer("dense1").activation.__name__ == "relu"
    assert tuple(model.output.shape) == (None, 2)
    assert model.get_layer("probabilities").activation.__name__ == "softmax"
    conv_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    dense_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(conv_layers) == 3 and len(dense_layers) == 2


def test_channel_count_follows_the_bands():
    normalization = Normalization(
        ("g", "r", "ivar_g", "ivar_r"), (0, 0, 0, 0), (1, 1, 1, 1), (False, False, True, True)
    )
    model = build_model((64, 64, 4), LENET, normalization)
    assert tuple(model.input.shape) == (None, 64, 64, 4)
    assert tuple(model.get_layer("block1_conv1").kernel.shape) == (7, 7, 4, 18)


def test_deep_model_is_deeper_and_its_pieces_are_configurable():
    deep = build_model((64, 64, 6), DEEP, pass_through(6))
    convs = [layer for layer in deep.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 8 and {layer.kernel_size for layer in convs} == {(3, 3)}
    assert tuple(deep.get_layer("block4_pool").output.shape) == (None, 4, 4, 256)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in deep.layers)

    custom = model_config("lenet", conv_maps=(8, 16), kernel_size=5, dense_units=(32, 16))
    model = build_model((64, 64, 6), custom, pass_through(6))
    assert tuple(model.get_layer("block2_pool").output.shape) == (None, 16, 16, 16)
    assert model.get_layer("block1_conv1").kernel_size == (5, 5)
    assert tuple(model.get_layer("dense2").output.shape) == (None, 16)


def test_compact_model_keeps_the_centre_sharp():
    model = build_model((64, 64, 6), COMPACT, pass_through(6))
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convs] == [16, 16, 32, 32, 64, 64]
    assert {layer.kernel_size for layer in convs} == {(3, 3)}
    assert all(layer.activation.__name__ == "relu" for layer in convs)
    pools = [model.get_layer(f"block{block}_pool") for block in (1, 2, 3)]
    assert all(isinstance(layer, keras.layers.MaxPooling2D) and layer.pool_size == (2, 2) for layer in pools)
    assert tuple(model.get_layer("block3_pool").output.shape) == (None, 8, 8, 64)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert tuple(model.get_layer("dense1").output.shape) == (None, 64)
    # Cheaper per example than the original obiwan code's LeNet.
    assert forward_flops_per_example(model) < forward_flops_per_example(
        build_model((64, 64, 6), LENET, pass_through(6))
    )


def test_bad_model_settings_name_the_problem():
    with pytest.raises(RealfakeError, match="unknown model 'resnet'"):
        model_config("resnet")
    with pytest.raises(RealfakeError, match="kernel_size"):
        model_config("lenet", kernel_size=0)


def test_lenet_forward_flops_are_the_analytic_count():
    model = build_model((64, 64, 6), LENET, pass_through(6))
    expected = (
        2 * 64 * 64 * 7 * 7 * 6 * 18
        + 2 * 32 * 32 * 7 * 7 * 18 * 36
        + 2 * 16 * 16 * 7 * 7 * 36 * 54
        + 2 * 8 * 8 * 54 * 64
        + 2 * 64 * 2
    )
    assert forward_flops_per_example(model) == expected == 157_593_856


def test_normalization_is_asinh_for_fluxes_and_a_ratio_for_inverse_variance():
    layer = InputNormalization(("g", "ivar_g"), (0.001, 0.0), (0.01, 5000.0), (False, True))
    generator = np.random.default_rng(0)
    stamps = np.stack(
        [
            generator.normal(0, 0.01, (2, 8, 8)) * 10 ** generator.uniform(0, 4, (2, 8, 8)),
            generator.uniform(0, 1e4, (2, 8, 8)),
        ],
        axis=-1,
    ).astype(np.float32)
    stamps[0, :2, :2, 1] = 0.0
    output = keras.ops.convert_to_numpy(layer(stamps))
    np.testing.assert_allclose(output[..., 0], np.arcsinh((stamps[..., 0] - 0.001) / 0.01), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(output[..., 1], stamps[..., 1] / 5000.0, rtol=1e-6)
    assert np.all(output[0, :2, :2, 1] == 0.0)
    # Relative depth (every model realfake builds): each stamp's inverse variance over its own covered mean.
    relative = InputNormalization(("g", "ivar_g"), (0.001, 0.0), (0.01, 5000.0), (False, True), relative_depth=True)
    output = keras.ops.convert_to_numpy(relative(stamps))
    np.testing.assert_allclose(output[..., 0], np.arcsinh((stamps[..., 0] - 0.001) / 0.01), rtol=1e-5, atol=1e-6)
    for index in range(2):
        ivar = stamps[index, ..., 1]
        expected = np.arcsinh((ivar / ivar[ivar > 0].mean() - 1) / DEPTH_SCALE)
        np.testing.assert_allclose(output[index, ..., 1], expected, rtol=1e-4, atol=1e-4)
    # No coverage is relative depth 0: far below the stamp's mean.
    np.testing.assert_allclose(output[0, :2, :2, 1], np.arcsinh(-1 / DEPTH_SCALE), rtol=1e-5)
    # A 5% dip at the centre of a uniform stamp is one unit below its surroundings.
    uniform = np.full((1, 8, 8, 2), 1000.0, dtype=np.float32)
    uniform[0, 4, 4, 1] = 950.0
    dip = keras.ops.convert_to_numpy(relative(uniform))[0, ..., 1]
    mean = (63 * 1000.0 + 950.0) / 64
    assert dip[4, 4] == pytest.approx(np.arcsinh((950.0 / mean - 1) / DEPTH_SCALE), abs=1e-3)
    assert dip[4, 4] < -0.8 and abs(dip[0, 0]) < 0.05


def test_normalization_comes_from_the_manifest(manifest):
    normalization = normalization_from_manifest(manifest, "manifest.json")
    assert normalization.channel_names == CHANNEL_NAMES
    statistics = manifest["normalization"]["channels"]
    assert normalization.centers[0] == statistics["g"]["median"]
    assert normalization.scales[0] == statistics["g"]["mad_sigma"]
    assert normalization.centers[3] == 0.0 and normalization.scales[3] == statistics["ivar_g"]["median"]
    assert normalization.inverse_variance == (False, False, False, True, True, True)


def test_unusable_statistics_name_the_manifest_key(manifest):
    broken = json.loads(json.dumps(manifest))
    broken["normalization"]["channels"]["ivar_r"]["median"] = 0.0
    with pytest.raises(RealfakeError, match=r"manifest.json: normalization.channels.ivar_r.median"):
        normalization_from_manifest(broken, "manifest.json")
    del broken["normalization"]["channels"]["z"]
    with pytest.raises(RealfakeError, match=r"normalization.channels.z"):
        normalization_from_manifest(broken, "manifest.json")


def test_saved_model_reloads_with_its_normalisation(tmp_path, manifest):
    model = build_model((64, 64, 6), LENET, normalization_from_manifest(manifest, "manifest.json"))
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    layer = reloaded.get_layer("normalization")
    assert isinstance(layer, InputNormalization)
    assert layer.scales == model.get_layer("normalization").scales
    stamps = np.random.default_rng(1).normal(0, 0.01, (4, 64, 64, 6)).astype(np.float32)
    np.testing.assert_array_equal(reloaded.predict(stamps, verbose=0), model.predict(stamps, verbose=0))


def test_initial_loss_is_of_order_one(small_shard_set, manifest):
    stamps = np.load(small_shard_set / "xtrain_0.npy")
    labels = np.load(small_shard_set / "ytrain_0.npy")
    keras.utils.set_random_seed(1)
    normalized = build_model((64, 64, 6), LENET, normalization_from_manifest(manifest, "manifest.json"))
    loss = float(np.mean(keras.losses.sparse_categorical_crossentropy(labels, normalized.predict(stamps, verbose=0))))
    assert loss < 2.0
    # Without normalisation (the original code) the same model starts far off: the test can tell.
    keras.utils.set_random_seed(1)
    raw = build_model((64, 64, 6), LENET, pass_through(6))
    raw_loss = float(np.mean(keras.losses.sparse_categorical_crossentropy(labels, raw.predict(stamps, verbose=0))))
    assert raw_loss > 5.0
