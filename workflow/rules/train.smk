# Training: the CNN on the shards, once per view: "full" for the verdict, and each
# restricted view of evaluate.audit for the shortcut audit (src/realfake/model/views.py);
# with cross-fitting (evaluate.folds K > 1) once per view and fold, {fold} "-fold<k>":
# K jobs per view that SLURM runs side by side (src/realfake/crossfit.py). Checkpoints (results/train/ckpts), TensorBoard
# logs (results/train/logs) and the profiler trace (results/train/prof) are not
# declared outputs on purpose: Snakemake deletes a failed job's outputs, and the
# checkpoints are what lets a re-run resume at the exact epoch and batch.


rule train:
    input:
        "results/shards",
    output:
        model="results/train/{view}{fold}/model.keras",
        history="results/train/{view}{fold}/history.json",
    log:
        "logs/train/{view}{fold}.log",
    benchmark:
        "benchmarks/train/{view}{fold}.tsv"
    conda:
        "../../environment.yml"
    # TensorFlow uses every core it is given; on a cluster the profile sets them.
    threads: all_cores()
    resources:
        # Workers: the launcher ("srun" in the SLURM profiles) starts `tasks` of them,
        # which train together (multi-worker, cluster from SLURM's environment).
        # "": one process.
        mpi="",
        tasks=1,
        # Environment variables of each worker, "NAME=value ..." (set by the profiles).
        task_env="",
    params:
        launch=launcher,
        fold=fold_argument,
        settings=train_arguments(),
    shell:
        "{params.launch}realfake train --shards {input:q} --out $(dirname {output.model:q})"
        " --view {wildcards.view}{params.fold} --intra-op-threads {threads} {params.settings} > {log:q} 2>&1"
