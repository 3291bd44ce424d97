# realfake: can a CNN tell fake galaxies injected into real sky images from real
# ones? The stages live in workflow/rules/, one file each; the settings in
# config/config.yaml (explained in config/README.md); how to run in README.md.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/checks.smk"
include: "workflow/rules/arguments.smk"
include: "workflow/rules/mock.smk"
include: "workflow/rules/cutouts.smk"
include: "workflow/rules/shards.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_targets(),
