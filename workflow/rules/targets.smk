# Targets, one per coarse stage of dvc.yaml (DVC owns versions, Snakemake runs the jobs):
#   snakemake train --cores all --config experiment=smoke     everything up to the trained models
# Each stage's outputs come from list functions in common.smk; a new study adds its list here,
# one line per stage, and its output folders to the matching stage of dvc.yaml.


rule data:
    input:
        data_outputs(),


rule train:
    input:
        vib_vim_models(),
        infobal_models(),


rule evaluate:
    input:
        vib_vim_evals(),
        vib_vim_embeddings(),
        vib_vim_tables(),
        infobal_evals(),
        infobal_tables(),
        summary_outputs(),


rule report:
    input:
        vib_vim_figures(),
        infobal_figures(),
        replication_outputs(),
