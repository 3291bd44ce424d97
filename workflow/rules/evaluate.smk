# Evaluation: each trained CNN's predictions on the test split (predict, one job per
# view), then the verdict, breakdowns, shortcut baselines and audit (evaluate).


rule predict:
    input:
        model="results/train/{view}/model.keras",
        shards="results/shards",
    output:
        "results/evaluate/{view}/predictions.parquet",
    log:
        "logs/predict/{view}.log",
    benchmark:
        "benchmarks/predict/{view}.tsv"
    conda:
        "../../environment.yml"
    shell:
        "realfake predict --shards {input.shards} --model {input.model} --out {output} > {log} 2>&1"


rule evaluate:
    input:
        predictions="results/evaluate/full/predictions.parquet",
        model="results/train/full/model.keras",
        audit=audit_predictions(),
        shards="results/shards",
    output:
        predictions="results/evaluate/predictions.parquet",
        metrics="results/evaluate/metrics.json",
        breakdowns="results/evaluate/breakdowns.csv",
        mean_stamps="results/evaluate/mean_stamps.npz",
        attribution="results/evaluate/attribution.npz",
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
        "realfake evaluate --shards {input.shards} --predictions {input.predictions} --model {input.model}"
        " {params.audit}"
        " --out $(dirname {output.metrics}) {params.settings} > {log} 2>&1"
