# Shards: every brick's cutouts -> one balanced, magnitude-matched, globally
# shuffled train/validation/test set of .npy shards with catalogs and manifest.json
# (docs/shards_format.md). One job: the global shuffle needs every brick.


rule shards:
    input:
        real=cutouts_products_of("real"),
        sim=cutouts_products_of("sim"),
        bricks=bricks_file(),
    output:
        directory("results/shards"),
    log:
        "logs/shards.log",
    benchmark:
        "benchmarks/shards.tsv"
    conda:
        "../../environment.yml"
    params:
        real=cutouts_directory_of("real"),
        sim=cutouts_directory_of("sim"),
        bricks=shards_bricks_arguments,
        settings=shards_arguments(),
    shell:
        "realfake shards --real {params.real:q} --sim {params.sim:q}"
        " {params.bricks} --out {output:q} {params.settings} > {log:q} 2>&1"
