# infomax: replication pipeline.  Thin: config, validation, rule files, the final targets.
#   snakemake --cores all                              the experiment named in params.yaml (quick)
#   snakemake --cores all --config experiment=paper    another one (paper: the full protocol)
# Both files are found next to this Snakefile, so `--directory OTHER` runs with the project's config.
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from infomax.config import ConfigError, read_yaml
from infomax.datasets import WILDCARD as DATASET_NAMES

CONFIG_FILES = [Path(workflow.basedir) / "config/config.yaml", Path(workflow.basedir) / "params.yaml"]
for _file in CONFIG_FILES:  # a syntax error named with its file, line and column
    try:
        read_yaml(_file)
    except ConfigError as e:
        raise WorkflowError(str(e)) from None


configfile: str(CONFIG_FILES[0])
configfile: str(CONFIG_FILES[1])  # `experiment`: the one switch, shared with DVC


# `snakemake --report results/<experiment>/report.html`: this text, then the figures with captions
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


# the shared wildcards; each study's own are in its rule file
wildcard_constraints:
    seed=r"\d+",
    dataset=DATASET_NAMES,  # the dataset table's names (infomax.datasets)


include: "workflow/rules/data.smk"
for _study in STUDIES:  # each study's rules and plumbing: workflow/rules/<study>.smk
    include: rule_file(_study.NAME)
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        study_outputs(),
        summary_outputs(),
        replication_outputs(),
