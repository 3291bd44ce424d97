# The mock survey: a small survey in the DR5 and obiwan (or, with mock.injector
# legacysim, legacysim) file layouts, rendered by `realfake mock-survey` when
# input.source is mock; the rs dirs' (runs') files are common.smk's MOCK_RUN_FILES,
# and with mock.plain_run those of legacysim's plain legacypipe run too
# (mock_plain_run_files). The brick table and each brick are separate jobs, so
# bricks render in parallel; all get the same settings.


rule mock_brick_table:
    output:
        bricks="results/mock/bricks.txt",
        table="results/mock/dr5/survey-bricks.fits",
        manifest=mock_run_manifest(),
    log:
        "logs/mock/brick_table.log",
    conda:
        "../../environment.yml"
    params:
        out=mock_output_directory,
        settings=mock_survey_arguments(),
    shell:
        "realfake mock-survey --out {params.out:q} --table-only {params.settings}"
        " > {log:q} 2>&1"


rule mock_brick:
    output:
        images=expand(
            "results/mock/dr5/coadd/{{bri}}/{{brick}}/legacysurvey-{{brick}}-image-{band}.fits.fz",
            band=bands(),
        ),
        invvars=expand(
            "results/mock/dr5/coadd/{{bri}}/{{brick}}/legacysurvey-{{brick}}-invvar-{band}.fits.fz",
            band=bands(),
        ),
        tractor="results/mock/dr5/tractor/{bri}/tractor-{brick}.fits",
        sim_images=mock_run_files("image"),
        sim_invvars=mock_run_files("invvar"),
        sim_catalogs=mock_run_files("catalog"),
        sim_tractors=mock_run_files("tractor"),
        plain_images=mock_plain_run_files("image"),
        plain_invvars=mock_plain_run_files("invvar"),
        plain_catalog=mock_plain_run_files("catalog"),
        plain_tractor=mock_plain_run_files("tractor"),
        truth="results/mock/truth/{bri}/truth-{brick}.fits",
        manifest=mock_manifest_files(),
    log:
        "logs/mock/{bri}/{brick}.log",
    benchmark:
        "benchmarks/mock/{bri}/{brick}.tsv"
    conda:
        "../../environment.yml"
    params:
        out=mock_output_directory,
        settings=mock_survey_arguments(),
    shell:
        "realfake mock-survey --out {params.out:q} --brick {wildcards.brick}"
        " {params.settings} > {log:q} 2>&1"
