"""The CNN: its architectures (:mod:`realfake.model.architectures`), the Keras model with its input
normalisation (:mod:`realfake.model.network`), and the channel views it may be shown (:mod:`realfake.model.views`)."""
