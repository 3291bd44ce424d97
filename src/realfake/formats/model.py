"""The trained model file (``model.keras``): saving it atomically, loading it back checked, and its identity.

``realfake train`` writes ``<out>/model.keras`` (:data:`MODEL_NAME`) with :func:`save_model`. A model records
what it was made for in its own layers (:mod:`realfake.model.network`): its normalisation layer the channel names
and the identity of the shard set it was trained on (:func:`model_shard_set`), its view layer the view
(:func:`model_view`). Whoever uses a model for a shard set (``realfake predict``, ``realfake evaluate``) loads it
through :func:`load_model_of`, which checks that it takes that shard set's stamps and was trained on it. A model
is identified by its content, :func:`model_digest` (the SHA-256 of its weights), not by its path or its file's
bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from realfake.atomic import remove_stale_temporaries, temporary_path
from realfake.digests import digest_array
from realfake.errors import RealfakeError
from realfake.formats.shardset import ShardSet, short_identity

MODEL_NAME = "model.keras"


def save_model(model, path: Path) -> None:
    """Save a Keras model to ``path`` (a ``.keras`` file), atomically: a killed save leaves the previous file or
    none, never a part of one."""
    path = Path(path)
    # Keras insists on the .keras suffix, so the temporary name keeps it.
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path, suffix=".keras")
    temporary = temporary_path(path, suffix=".keras")
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_model(path: Path):
    """The Keras model at ``path``, unchecked (:func:`load_model` checks it against a shard set); RealfakeError
    naming the file when it is missing or Keras cannot load it."""
    path = Path(path)
    if not path.is_file():
        raise RealfakeError(f"model file {path} does not exist (run `realfake train` first)")
    import keras

    import realfake.model.network  # noqa: F401  registers InputNormalization for deserialisation

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a bad file; all mean the same to a user
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RealfakeError(f"cannot load model {path}: {first_line}") from None


def load_model(path: Path, channel_names: tuple[str, ...], stamp_size: int, shards: Path, shard_set: str | None = None):
    """The Keras model at ``path`` (:func:`read_model`), checked to take (S, S, C) stamps of the shard set's
    channels and, when ``shard_set`` (the manifest's identity) is given, to have been trained on that shard set."""
    path = Path(path)
    model = read_model(path)
    input_shape = tuple(model.inputs[0].shape)
    if len(input_shape) != 4 or input_shape[-1] != len(channel_names):
        raise RealfakeError(
            f"model {path} takes input {input_shape[1:]} but the shards in {shards} have {len(channel_names)} "
            f"channels ({', '.join(channel_names)})"
        )
    if input_shape[1] not in (None, stamp_size) or input_shape[2] not in (None, stamp_size):
        raise RealfakeError(
            f"model {path} takes {input_shape[1]}x{input_shape[2]} stamps but the shards hold {stamp_size}x{stamp_size}"
        )
    for layer in model.layers:
        names = getattr(layer, "channel_names", None)
        if names is not None and tuple(names) != tuple(channel_names):
            raise RealfakeError(
                f"model {path} was trained on channels {', '.join(names)} but the shards in {shards} have "
                f"{', '.join(channel_names)}"
            )
    if shard_set is not None:
        trained_on = model_shard_set(model)
        if trained_on != shard_set:
            raise RealfakeError(
                f"model {path} was trained on shard set {short_identity(trained_on)}, but {shards} is shard set "
                f"{short_identity(shard_set)}: train it on these shards first (`realfake train`)"
            )
    return model


def model_view(model) -> str:
    """The view a model was trained on (:mod:`realfake.model.views`): its ``view`` layer's, else "full"."""
    for layer in model.layers:
        view = getattr(layer, "view", None)
        if isinstance(view, str):
            return view
    return "full"


def model_shard_set(model) -> str | None:
    """The identity of the shard set a model was trained on (its normalisation layer's ``shard_set``);
    None when the model does not record one (made by an older realfake)."""
    for layer in model.layers:
        identity = getattr(layer, "shard_set", None)
        if identity:
            return str(identity)
    return None


def load_model_of(shard_set: ShardSet, path: Path):
    """The model at ``path``, checked to take the shard set's stamps and to have been trained on it."""
    return load_model(path, shard_set.channel_names, shard_set.stamp_size, shard_set.directory, shard_set.identity)


def load_model_with_digest(shard_set: ShardSet, path: Path):
    """:func:`load_model_of` and the model's :func:`model_digest`."""
    model = load_model_of(shard_set, path)
    return model, model_digest(model)


def model_digest(model) -> str:
    """The SHA-256 (hex) of a model's weights: every variable's shape, dtype and values, in order. What
    identifies a trained model by its content: the same weights give the same digest whatever the path or the
    day the file was saved (a .keras file records its save date, so its bytes differ between identical
    trainings), and another training gives another."""
    digest = hashlib.sha256()
    for weights in model.get_weights():
        array = np.ascontiguousarray(weights)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest_array(digest, array)
    return digest.hexdigest()
