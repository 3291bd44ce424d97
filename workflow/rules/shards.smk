# Shards: every brick's cutouts -> one balanced, magnitude-matched, globally
# shuffled train/test set of .npy shards with catalogs and manifest.json
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
        settings=shards_arguments(),
    shell:
        "realfake shards --real results/cutouts/real --sim results/cutouts/sim"
        " --bricks {input.bricks} --out {output} {params.settings} > {log} 2>&1"
