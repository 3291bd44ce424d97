# Report: figures, the original obiwan write-up's Figure 1 mosaics, galleries and one HTML page that
# opens in a browser with no network.


rule report:
    input:
        metrics="results/evaluate/metrics.json",
        predictions="results/evaluate/predictions.parquet",
        shards="results/shards",
        history="results/train/full/history.json",
        sensitivity=sensitivity_table(),
    output:
        "results/report/index.html",
    log:
        "logs/report.log",
    conda:
        "../../environment.yml"
    params:
        settings=report_arguments(),
    shell:
        "realfake report --evaluate $(dirname {input.metrics}) --shards {input.shards}"
        " --train $(dirname {input.history}) --out $(dirname {output}) {params.settings}"
        " > {log} 2>&1"
