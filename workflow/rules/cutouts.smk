# Cutouts: one job per brick and kind (real: the DR5 tractor sources passing the
# selection; sim: the obiwan fakes of every rs dir of the brick), each writing one
# HDF5 file with `realfake cutouts`. A job's inputs are exactly the files its brick's
# cutouts read, so changing one brick's files re-runs only that brick's jobs.
#
# On a cluster, one job per brick is too many (100k bricks: 200k jobs). A profile's
# `set-scatter: cutouts=N` makes the later stages wait instead for N batches of
# bricks per kind, each one MPI job (cutouts_batch) whose ranks share its bricks and
# write the same per-brick files. The per-brick rule stays: naming one brick's file
# as the target re-runs that brick alone.


# Batches per kind; 0: no batches, one job per brick and kind.
scattergather:
    cutouts=0,


# Writing a brick list takes no time: not worth a cluster job.
localrules:
    cutouts_batch_bricks,


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
        " --out {output:q} {params.settings} > {log:q} 2>&1"


# The brick list of one batch and kind. It is written when missing, and rewritten
# only when the batch's bricks, their input files or the cutouts settings change;
# then the batch's cutouts files on disk cannot be trusted and are removed here, so
# that the batch job makes them all. When a batch job stops part-way (a time limit),
# the list stays as it is, and the re-run skips the bricks whose files are complete.
rule cutouts_batch_bricks:
    input:
        batch_input_files,
    output:
        "results/cutouts/batches/{kind}/{batch}.txt",
    log:
        "logs/cutouts/batches/{kind}/{batch}-bricks.log",
    conda:
        "../../environment.yml"
    params:
        bricks=batch_brick_names,
        stale=batch_cutouts_files,
        settings=cutouts_arguments(),
    shell:
        "(rm -f {params.stale:q} && printf '%s\\n' {params.bricks:q} > {output:q}) > {log:q} 2>&1"


# One batch of bricks of one kind as one MPI job: under `srun -n N` (or `mpiexec -n
# N`) rank r cuts bricks r, r + N, ... of the list into the same per-brick files as
# the cutouts rule. The output only marks the batch done.
rule cutouts_batch:
    input:
        bricks="results/cutouts/batches/{kind}/{batch}.txt",
    output:
        touch("results/cutouts/batches/{kind}/{batch}.done"),
    log:
        "logs/cutouts/batches/{kind}/{batch}.log",
    benchmark:
        "benchmarks/cutouts/batches/{kind}/{batch}.tsv"
    conda:
        "../../environment.yml"
    resources:
        # The MPI launcher ("srun" in the SLURM profiles) and its ranks; "": one process.
        mpi="",
        tasks=1,
        # Environment variables of each rank, "NAME=value ..." (set by the profiles).
        task_env="",
    params:
        launch=launcher,
        out_dir=batch_cutouts_directory,
        settings=cutouts_arguments(),
    shell:
        "{params.launch}realfake cutouts --kind {wildcards.kind} --bricks {input.bricks:q}"
        " --out-dir {params.out_dir:q} {params.settings} > {log:q} 2>&1"
