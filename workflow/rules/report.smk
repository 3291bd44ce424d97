# Report: figures, the seed's Figure 1 mosaics, galleries and one HTML page that
# opens in a browser with no network.


rule report:
    input:
        metrics="results/evaluate/metrics.json",
        predictions="results/evaluate/predictions.parquet",
        shards="results/shards",
        history="results/train/history.json",
    output:
        "results/report/index.html",
    log:
        "logs/report.log",
    conda:
        "../../environment.yml"
    shell:
        "realfake report --evaluate results/evaluate --shards {input.shards}"
        " --train results/train --out results/report > {log} 2>&1"
