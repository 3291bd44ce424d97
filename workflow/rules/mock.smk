# The mock survey: a small survey in the DR5 and obiwan file layouts, rendered by
# `realfake mock-survey` when input.source is mock. The brick table and each brick
# are separate jobs, so bricks render in parallel; all get the same settings.


rule mock_brick_table:
    output:
        bricks="results/mock/bricks.txt",
        table="results/mock/dr5/survey-bricks.fits",
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
        sim_images=expand(
            "results/mock/obiwan/coadd/{{bri}}/{{brick}}/{rsdir}/legacysurvey-{{brick}}-image-{band}.fits.fz",
            rsdir=mock_rsdirs(),
            band=bands(),
        ),
        sim_invvars=expand(
            "results/mock/obiwan/coadd/{{bri}}/{{brick}}/{rsdir}/legacysurvey-{{brick}}-invvar-{band}.fits.fz",
            rsdir=mock_rsdirs(),
            band=bands(),
        ),
        simcats=expand(
            "results/mock/obiwan/obiwan/{{bri}}/{{brick}}/{rsdir}/simcat-elg-{{brick}}.fits",
            rsdir=mock_rsdirs(),
        ),
        sim_tractors=expand(
            "results/mock/obiwan/tractor/{{bri}}/{{brick}}/{rsdir}/tractor-{{brick}}.fits",
            rsdir=mock_rsdirs(),
        ),
        truth="results/mock/truth/{bri}/truth-{brick}.fits",
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
