"""One module per file that crosses a stage boundary, its writer, reader and checks side by side: the cutouts
file (:mod:`realfake.formats.cutouts`), the shard set (:mod:`realfake.formats.shardset`, its manifest
:mod:`realfake.formats.manifest`), the trained model
(:mod:`realfake.formats.model`), the training history (:mod:`realfake.formats.history`), the predictions
(:mod:`realfake.formats.predictions`), the evaluation's outputs
(:mod:`realfake.formats.evaluation`) and the sensitivity table (:mod:`realfake.formats.sensitivity`)."""
