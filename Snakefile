# infomax: replication pipeline.  Thin: config, validation, rule files, the final targets.
#   snakemake --cores all                              the default experiment (config/config.yaml)
#   snakemake --cores all --config experiment=paper    the full protocol
#   snakemake --cores all train                        one stage: data, train, evaluate or report
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


# `snakemake --report results/<experiment>/report.html`: this text, then the figures with captions
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    objective="deterministic|vib|vim",
    beta=r"0|[0-9.]+e-?[0-9]+",
    seed=r"\d+",
    dataset="mnist|cifar10",
    method=IB_METHODS,
    estimator="jsd|dv|nce|none",


include: "workflow/rules/data.smk"
include: "workflow/rules/vib_vim.smk"
include: "workflow/rules/infobal.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/targets.smk"


rule all:
    default_target: True
    input:
        vib_vim_outputs(),
        infobal_outputs(),
        summary_outputs(),
        replication_outputs(),
