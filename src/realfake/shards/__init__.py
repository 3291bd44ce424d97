"""The shards stage: balanced, shuffled train, validation and test shards of the cutouts.

| module | responsibility |
| --- | --- |
| ``settings.py`` | :class:`realfake.shards.settings.ShardSettings`: what to make |
| ``index.py`` | :func:`realfake.shards.index.index_cutouts`: the input files checked, one row per stamp |
| ``placement.py`` | which example goes to which split and place (:func:`realfake.shards.placement.place_examples`) |
| ``scatter.py`` | :func:`realfake.shards.scatter.scatter`: the stamps, labels and catalogs written in place |
| ``catalog_sort.py`` | :class:`realfake.shards.catalog_sort.CatalogBuckets`: the catalogs sorted in bounded memory |
| ``build.py`` | :func:`realfake.shards.build.run_shards`: the stage, its checks, identity and manifest |
"""
