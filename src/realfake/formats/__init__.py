"""One module per file that crosses a stage boundary, its writer, reader and checks side by side: the cutouts
file (:mod:`realfake.formats.cutouts`) and the shard set (:mod:`realfake.formats.shardset`)."""
