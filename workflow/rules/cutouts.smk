# Cutouts: one job per brick and kind (real: the DR5 tractor sources passing the
# selection; sim: the obiwan fakes of every rs dir of the brick), each writing one
# HDF5 file with `realfake cutouts`. A job's inputs are exactly the files its brick's
# cutouts read, so changing one brick's files re-runs only that brick's jobs.


rule cutouts:
    input:
        cutouts_input_files,
    output:
        "results/cutouts/{kind}/{bri}/{brick}.h5",
    log:
        "logs/cutouts/{kind}/{bri}/{brick}.log",
    benchmark:
        "benchmarks/cutouts/{kind}/{bri}/{brick}.tsv"
    conda:
        "../../environment.yml"
    params:
        settings=cutouts_arguments(),
    shell:
        "realfake cutouts --kind {wildcards.kind} --brick {wildcards.brick}"
        " --out {output} {params.settings} > {log} 2>&1"
