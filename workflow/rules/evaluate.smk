# Evaluation: each trained CNN's predictions on the test split (predict, per view and
# part), then the verdict, breakdowns, shortcut baselines and audit (evaluate: one job
# that gathers the parts).
#
# With cross-fitting (evaluate.folds K > 1) each view has K models, {fold} "-fold<k>", each
# predicting its fold's examples; evaluate reads every fold's files together.
#
# Prediction is a scatter/gather: a profile's `set-scatter: predict=N` makes N predict
# jobs per view, each over 1/N of the test shards (parts "1-of-N" to "N-of-N"), on GPU
# or KNL nodes; the evaluate job reads their files together, checked to cover the test
# split once (realfake.formats.predictions.read_predictions). With 1 part it is one predict job.


# Parts of each view's prediction.
scattergather:
    predict=1,


rule predict:
    input:
        model="results/train/{view}{fold}/model.keras",
        shards="results/shards",
    output:
        "results/evaluate/{view}{fold}/parts/{part}.parquet",
    log:
        "logs/predict/{view}{fold}/{part}.log",
    benchmark:
        "benchmarks/predict/{view}{fold}/{part}.tsv"
    conda:
        "../../environment.yml"
    params:
        fold=fold_argument,
    shell:
        "realfake predict --shards {input.shards:q} --model {input.model:q} --part {wildcards.part}{params.fold}"
        " --out {output:q} > {log:q} 2>&1"


rule evaluate:
    input:
        predictions=prediction_parts("full"),
        model=trained_file("full"),
        audit=audit_predictions(),
        shards="results/shards",
    output:
        predictions="results/evaluate/predictions.parquet",
        metrics="results/evaluate/metrics.json",
        breakdowns="results/evaluate/breakdowns.csv",
        mean_stamps="results/evaluate/mean_stamps.npz",
        attribution=attribution_maps("results/evaluate/attribution.npz"),
    log:
        "logs/evaluate.log",
    benchmark:
        "benchmarks/evaluate.tsv"
    conda:
        "../../environment.yml"
    params:
        audit=audit_arguments,
        settings=evaluate_arguments(),
    shell:
        "realfake evaluate --shards {input.shards:q} --predictions {input.predictions:q} --model {input.model:q}"
        " {params.audit}"
        " --out $(dirname {output.metrics:q}) {params.settings} > {log:q} 2>&1"
