# Evaluation: predictions of the trained CNN on the test shards, the classifier
# two-sample verdict, breakdowns and shortcut baselines.


rule evaluate:
    input:
        model="results/train/model.keras",
        shards="results/shards",
    output:
        predictions="results/evaluate/predictions.parquet",
        metrics="results/evaluate/metrics.json",
        breakdowns="results/evaluate/breakdowns.csv",
    log:
        "logs/evaluate.log",
    benchmark:
        "benchmarks/evaluate.tsv"
    conda:
        "../../environment.yml"
    params:
        settings=evaluate_arguments(),
    shell:
        "realfake evaluate --shards {input.shards} --model {input.model}"
        " --out $(dirname {output.metrics}) {params.settings} > {log} 2>&1"
