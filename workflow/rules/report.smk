# Report: figures, the original obiwan write-up's Figure 1 mosaics, galleries and one HTML page that
# opens in a browser with no network. The figures are also declared with report(), so that
# `snakemake --report report.zip` bundles them by section, with the page's own captions.

# Captions: the report page's prose, one file per figure (the package's src/realfake/report/text/).
CAPTIONS = "../../src/realfake/report/text"
# The magnitude bins of the pixel figures (realfake.conventions.PIXEL_BINS): one figure of each kind per bin.
PIXEL_FIGURE_BINS = range(PIXEL_BINS)


rule report:
    input:
        metrics="results/evaluate/metrics.json",
        predictions="results/evaluate/predictions.parquet",
        mean_stamps="results/evaluate/mean_stamps.npz",
        attribution=attribution_maps("results/evaluate/attribution.npz"),
        shards="results/shards",
        history=trained_file("full", "history.json"),
        sensitivity=sensitivity_table(),
    output:
        page="results/report/index.html",
        training_curves=report(
            "results/report/training_curves.png",
            caption=f"{CAPTIONS}/training_curves.html",
            category="1. The verdict",
        ),
        roc=report(
            "results/report/roc.png",
            caption=f"{CAPTIONS}/roc.html",
            category="1. The verdict",
        ),
        mean_difference=report(
            expand("results/report/mean_difference_{bin}.png", bin=PIXEL_FIGURE_BINS),
            caption=f"{CAPTIONS}/mean_difference.html",
            category="2. The difference in pixels",
            subcategory="class-mean stamps",
        ),
        radial_profile=report(
            expand("results/report/radial_profile_{bin}.png", bin=PIXEL_FIGURE_BINS),
            caption=f"{CAPTIONS}/radial_profile.html",
            category="2. The difference in pixels",
            subcategory="radial profiles",
        ),
        # None when evaluate.attribution is off: no maps to draw (the page says so).
        attribution=report(
            attribution_maps("results/report/attribution.png"),
            caption=f"{CAPTIONS}/attribution.html",
            category="3. What the CNN looks at",
        ),
        fake_parameters=report(
            "results/report/fake_parameters.png",
            caption=f"{CAPTIONS}/fake_parameters_figure.html",
            category="4. Which fakes look fake",
        ),
        breakdowns=report(
            "results/report/breakdowns.png",
            caption=f"{CAPTIONS}/breakdowns_figure.html",
            category="5. Breakdowns",
        ),
        galleries=report(
            expand(
                "results/report/{name}.png",
                name=["gallery_real_called_fake", "gallery_fake_called_real"],
            ),
            caption=f"{CAPTIONS}/galleries.html",
            category="6. Mosaics and galleries",
        ),
    log:
        "logs/report.log",
    conda:
        "../../environment.yml"
    params:
        settings=report_arguments(),
    shell:
        "realfake report --evaluate $(dirname {input.metrics:q}) --shards {input.shards:q}"
        " --train $(dirname {input.history:q}) --out $(dirname {output.page:q}) {params.settings}"
        " > {log:q} 2>&1"
