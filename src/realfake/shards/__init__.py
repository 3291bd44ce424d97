"""The shards stage: balanced, shuffled train, validation and test shards of the cutouts
(:mod:`realfake.shards.build`), and which example goes to which split (:mod:`realfake.shards.placement`)."""
